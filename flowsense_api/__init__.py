"""FlowSense API and dashboard (FastAPI): REST ``/api/v1``, WebSocket ``/ws``, pages under ``/dashboard``.

Start it with ``flowsense api`` (binds 127.0.0.1:8000 by default). The library ``flowsense`` never imports
this package.
"""

API_VERSION = "1"
