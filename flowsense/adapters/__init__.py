"""Vendor adapters of the live worker (one folder per vendor: ``redis``, ``ib``, ``prometheus``)."""
