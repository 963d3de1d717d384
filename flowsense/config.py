"""Runtime settings, read once from the environment into a frozen value object.

``FLOWSENSE_HOME`` (default ``./.flowsense``) holds every piece of state: the Parquet lake, the DuckDB
catalog and, later, MLflow and Dagster state. ``FLOWSENSE_PROFILE`` picks the deployment:
``local`` (embedded: files + SQLite) or ``production`` (PostgreSQL, Redis; settings from the environment).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from flowsense.errors import ConfigError

PROFILES = ("local", "production")


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    profile: str = "local"
    # API (flowsense_api): browser origins allowed by CORS (none: closed) and the default per-key rate limit
    api_cors_origins: tuple[str, ...] = ()
    api_rate_limit: float = 100.0

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def catalog_path(self) -> Path:
        return self.home / "flowsense.duckdb"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def reports(self) -> Path:
        return self.home / "reports"

    @property
    def worker_state(self) -> str:
        """Live worker state store: ``FLOWSENSE_STATE_DSN`` (a PostgreSQL DSN, production) when set, else
        the folder ``FLOWSENSE_HOME/worker`` (SQLite ``state.db``)."""
        return os.environ.get("FLOWSENSE_STATE_DSN", "").strip() or str(self.home / "worker")

    @property
    def redis_url(self) -> str:
        """Redis for the live worker's streams and events: ``FLOWSENSE_REDIS_URL`` (``redis://...`` or
        Feast's ``host:port``) else ``redis://127.0.0.1:6379/0``."""
        raw = os.environ.get("FLOWSENSE_REDIS_URL", "").strip()
        if not raw:
            return "redis://127.0.0.1:6379/0"
        if "://" not in raw:
            return f"redis://{raw.split(',')[0]}/0"
        return raw

    @property
    def mlflow_uri(self) -> str:
        """MLflow tracking + registry URI: ``FLOWSENSE_MLFLOW_URI`` if set; locally
        ``sqlite:////abs/FLOWSENSE_HOME/mlflow.db`` (four slashes: an absolute path); in production
        PostgreSQL (``postgresql://postgres@127.0.0.1:5432/flowsense_mlflow`` unless set)."""
        uri = os.environ.get("FLOWSENSE_MLFLOW_URI", "").strip()
        if uri:
            return uri
        if self.profile == "production":
            return "postgresql://postgres@127.0.0.1:5432/flowsense_mlflow"
        return f"sqlite:///{(self.home / 'mlflow.db').as_posix()}"

    @property
    def mlflow_artifacts(self) -> str:
        """Where MLflow artifacts go (never ``./mlruns``): ``FLOWSENSE_MLFLOW_ARTIFACTS`` or
        ``FLOWSENSE_HOME/mlflow-artifacts`` as a ``file://`` URI."""
        uri = os.environ.get("FLOWSENSE_MLFLOW_ARTIFACTS", "").strip()
        return uri or (self.home / "mlflow-artifacts").as_uri()

    @property
    def instruments_file(self) -> Path:
        """User instruments file (YAML/JSON): ``$FLOWSENSE_INSTRUMENTS`` or ``$FLOWSENSE_HOME/instruments.yaml``."""
        raw = os.environ.get("FLOWSENSE_INSTRUMENTS", "").strip()
        return Path(raw).expanduser() if raw else self.home / "instruments.yaml"

    @property
    def api_dir(self) -> Path:
        """API keys (hashed) and the audit log of admin calls."""
        return self.home / "api"

    @property
    def celery_broker(self) -> str:
        """Broker of the production Celery executor: ``FLOWSENSE_CELERY_BROKER`` or the local RabbitMQ
        (``pyamqp://guest:guest@127.0.0.1:5672//``); a ``redis://`` URL works as well."""
        return os.environ.get("FLOWSENSE_CELERY_BROKER", "").strip() or "pyamqp://guest:guest@127.0.0.1:5672//"

    @property
    def executor(self) -> str:
        """Dagster executor: ``FLOWSENSE_EXECUTOR`` (``default``, ``celery``, ``k8s``); ``celery`` in
        production, Dagster's default multiprocess executor locally."""
        default = "celery" if self.profile == "production" else "default"
        return os.environ.get("FLOWSENSE_EXECUTOR", "").strip().lower() or default

    @classmethod
    def from_env(cls, home: str | Path | None = None) -> Settings:
        raw_home = home if home is not None else os.environ.get("FLOWSENSE_HOME", "./.flowsense")
        if not str(raw_home).strip():
            raise ConfigError("FLOWSENSE_HOME is set but empty")
        profile = os.environ.get("FLOWSENSE_PROFILE", "local").strip().lower()
        if profile not in PROFILES:
            raise ConfigError(f"FLOWSENSE_PROFILE={profile!r} is not one of {', '.join(PROFILES)}")
        cors = tuple(o.strip() for o in os.environ.get("FLOWSENSE_API_CORS_ORIGINS", "").split(",") if o.strip())
        raw_rate = os.environ.get("FLOWSENSE_API_RATE_LIMIT", "100").strip()
        try:
            rate = float(raw_rate)
        except ValueError:
            raise ConfigError(f"FLOWSENSE_API_RATE_LIMIT={raw_rate!r} is not a number (requests/s per key)") from None
        if not rate > 0:
            raise ConfigError(f"FLOWSENSE_API_RATE_LIMIT={raw_rate!r} must be > 0 (requests/s per key)")
        return cls(home=Path(raw_home).expanduser().resolve(), profile=profile,
                   api_cors_origins=cors, api_rate_limit=rate)
