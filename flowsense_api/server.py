"""Run the API with uvicorn (``flowsense api``): one process, uvloop + httptools, keys never logged."""

from __future__ import annotations

import logging
import re

from flowsense.config import Settings

_SECRET = re.compile(r"(fsk_[0-9a-f]{12}_)[A-Za-z0-9_\-]+|(Bearer\s+)\S+", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Belt and braces: keys travel only in headers and WebSocket frames, which are not logged, but any log
    record that still carries something shaped like a key or a bearer token has it masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if "fsk_" in msg or "earer" in msg:
            record.msg = _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", msg)
            record.args = ()
        return True


def log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    cfg = {**LOGGING_CONFIG, "filters": {"redact": {"()": RedactSecrets}}}
    cfg["handlers"] = {name: {**h, "filters": ["redact"]} for name, h in LOGGING_CONFIG["handlers"].items()}
    cfg["loggers"] = {**LOGGING_CONFIG["loggers"], "flowsense_api": {"handlers": ["default"], "level": "INFO"}}
    return cfg


def serve(host: str = "127.0.0.1", port: int = 8000, *, settings: Settings | None = None,
          access_log: bool = True, cors_origins: tuple[str, ...] | None = None) -> None:
    import uvicorn

    from flowsense_api.app import create_app

    app = create_app(settings, cors_origins=cors_origins)
    uvicorn.run(app, host=host, port=port, log_config=log_config(), access_log=access_log,
                loop="uvloop", http="httptools", ws="websockets-sansio", server_header=False, lifespan="on")
