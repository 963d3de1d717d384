"""Prometheus metrics of the live worker (see ``metrics``)."""
