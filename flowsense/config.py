"""Runtime settings, read once from the environment into a frozen value object.

``FLOWSENSE_HOME`` (default ``./.flowsense``) holds every piece of state: the Parquet lake, the DuckDB
catalog, the Feast repository, MLflow and Dagster state. ``FLOWSENSE_PROFILE`` picks the deployment:
``local`` (embedded: files + SQLite) or ``production`` (PostgreSQL, Redis; settings from the environment).

This module is the one place where FlowSense reads environment variables (:func:`env`); everything else
takes a :class:`Settings` (or an explicit argument). Variables:

* ``FLOWSENSE_HOME``, ``FLOWSENSE_PROFILE``: see above;
* ``FLOWSENSE_REDIS_URL``: Redis of the production profile (Feast online store, worker streams), ``host:port``
  or ``redis://[:password@]host:port[/db]``; default ``127.0.0.1:6379``;
* ``FLOWSENSE_FEAST_PROJECT``: the Feast project (default ``flowsense``);
* ``DAGSTER_HOME``: Dagster's instance folder (default ``FLOWSENSE_HOME/dagster``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from flowsense.errors import ConfigError

PROFILES = ("local", "production")


def env(name: str, default: str | None = None) -> str | None:
    """Environment variable ``name`` (stripped; unset or blank -> ``default``)."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip()


def profile_from_env() -> str:
    """``FLOWSENSE_PROFILE`` (default ``local``), validated."""
    profile = (env("FLOWSENSE_PROFILE") or "local").lower()
    if profile not in PROFILES:
        raise ConfigError(f"FLOWSENSE_PROFILE={profile!r} is not one of {', '.join(PROFILES)}")
    return profile


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    profile: str = "local"
    # API (flowsense_api): browser origins allowed by CORS (none: closed) and the default per-key rate limit
    api_cors_origins: tuple[str, ...] = ()
    api_rate_limit: float = 100.0
    feast_project: str | None = field(default_factory=lambda: env("FLOWSENSE_FEAST_PROJECT"))

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
    def tick_tz(self) -> str | None:
        """Zone of naive times in trades/quotes files dropped in the inbox (``FLOWSENSE_TICK_TZ``, e.g.
        ``America/New_York``); unset, such files are refused rather than read as UTC. The command line's
        ``--tz`` does the same for one ``flowsense ingest``."""
        raw = os.environ.get("FLOWSENSE_TICK_TZ", "").strip()
        if not raw:
            return None
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"FLOWSENSE_TICK_TZ={raw!r} is not an IANA time zone (e.g. America/New_York, UTC)"
                              ) from None
        return raw

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

    @property
    def dagster_home(self) -> Path:
        """``DAGSTER_HOME``, else ``FLOWSENSE_HOME/dagster``."""
        raw = env("DAGSTER_HOME")
        return Path(raw).expanduser().resolve() if raw else self.home / "dagster"

    @classmethod
    def from_env(cls, home: str | Path | None = None, *, require_home: bool = False) -> Settings:
        """Settings from the environment; ``home`` overrides ``FLOWSENSE_HOME``.

        ``require_home``: refuse to fall back to ``./.flowsense`` (the production profile never writes into
        a working directory by accident).
        """
        raw_env = os.environ.get("FLOWSENSE_HOME")
        if home is None and raw_env is not None and not raw_env.strip():
            raise ConfigError("FLOWSENSE_HOME is set but empty")
        raw_home = home if home is not None else env("FLOWSENSE_HOME")
        if raw_home is None:
            if require_home:
                raise ConfigError("FLOWSENSE_HOME must be set explicitly in the production profile")
            raw_home = "./.flowsense"
        if not str(raw_home).strip():
            raise ConfigError("FLOWSENSE_HOME is set but empty")
        profile = profile_from_env()
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
