"""Sensors of the code location, one module each exposing ``defs`` (merged in ``definitions.py``)."""
