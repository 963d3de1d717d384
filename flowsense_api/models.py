"""The model registry as the API sees it (MLflow, ``Settings.mlflow_uri``): registered models, their
versions and aliases, the evaluation table of a version next to its baselines, and promotion.

``flowsense.models.registry`` is used where it offers a function (``promote``); otherwise the MLflow
client is called directly. MLflow is imported lazily (it takes seconds) and only when a models endpoint
is first called.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from flowsense.config import Settings
from flowsense_api.lakedata import _TTL, NotFound, jsonable

EVAL_ARTIFACTS = ("evaluation.json", "evaluation/evaluation.json", "eval/evaluation.json")


def tracking_uri(settings: Settings) -> str:
    uri = getattr(settings, "mlflow_uri", None)
    return str(uri) if uri else f"sqlite:///{settings.home / 'mlflow.db'}"


class ModelRegistry:
    def __init__(self, settings: Settings, ttl_s: float = 5.0) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        self._cache = _TTL(ttl_s)

    @property
    def configured(self) -> bool:
        uri = tracking_uri(self.settings)
        if uri.startswith("sqlite:///"):
            return Path(uri.removeprefix("sqlite:///")).exists()
        return True

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from mlflow.tracking import MlflowClient

                uri = tracking_uri(self.settings)
                self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            return self._client

    def models(self) -> list[dict[str, Any]]:
        if not self.configured:
            return []

        def load() -> list[dict[str, Any]]:
            out = []
            for rm in self.client().search_registered_models(max_results=1000):
                latest = max((int(v.version) for v in (rm.latest_versions or [])), default=None)
                out.append({"name": rm.name, "description": rm.description, "aliases": {k: str(v) for k, v in (rm.aliases or {}).items()},
                            "latest_version": latest, "tags": dict(rm.tags or {}),
                            "updated_at_ms": rm.last_updated_timestamp})
            return jsonable(out)
        return self._cache.get("models", load)

    def model(self, name: str) -> dict[str, Any]:
        if not self.configured:
            raise NotFound("no model registry yet (no model has been trained under this FLOWSENSE_HOME)")
        from mlflow.exceptions import MlflowException

        c = self.client()
        try:
            rm = c.get_registered_model(name)
        except MlflowException:
            raise NotFound(f"no registered model {name!r} (see /api/v1/models)") from None
        aliases = {k: str(v) for k, v in (rm.aliases or {}).items()}
        by_version: dict[str, list[str]] = {}
        for alias, v in aliases.items():
            by_version.setdefault(str(v), []).append(alias)
        versions = []
        for mv in c.search_model_versions(f"name = '{_quote(name)}'", max_results=1000):
            metrics: dict[str, Any] = {}
            if mv.run_id:
                try:
                    metrics = dict(c.get_run(mv.run_id).data.metrics)
                except MlflowException:
                    metrics = {}
            versions.append({"version": int(mv.version), "aliases": sorted(by_version.get(str(mv.version), [])),
                             "status": mv.status, "run_id": mv.run_id, "source": mv.source,
                             "created_at_ms": mv.creation_timestamp, "tags": dict(mv.tags or {}),
                             "metrics": metrics})
        versions.sort(key=lambda v: v["version"], reverse=True)
        return jsonable({"name": name, "description": rm.description, "aliases": aliases, "versions": versions,
                         "champion": aliases.get("champion"), "challenger": aliases.get("challenger")})

    def evaluation(self, name: str, version: str | None) -> dict[str, Any]:
        """The evaluation table of a version (default: the champion, else the latest) with its baselines."""
        info = self.model(name)
        if not info["versions"]:
            raise NotFound(f"model {name!r} has no versions")
        if version in (None, ""):
            version = str(info["champion"] or info["versions"][0]["version"])
        elif version in info["aliases"]:
            version = str(info["aliases"][version])
        mv = next((v for v in info["versions"] if str(v["version"]) == str(version)), None)
        if mv is None:
            raise NotFound(f"model {name!r} has no version {version!r}")
        table = self._eval_artifact(mv["run_id"])
        if table is None:  # fall back to the run's metrics: rows per prefix "<model|baseline>.<metric>"
            table = _metrics_table(mv["metrics"])
        return jsonable({"name": name, "version": mv["version"], "aliases": mv["aliases"], "run_id": mv["run_id"],
                         "table": table})

    def _eval_artifact(self, run_id: str | None) -> list[dict[str, Any]] | None:
        if not run_id:
            return None
        import mlflow

        for rel in EVAL_ARTIFACTS:
            try:
                path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=rel,
                                                           tracking_uri=tracking_uri(self.settings))
            except Exception:
                continue
            try:
                got = json.loads(Path(path).read_text())
            except (OSError, ValueError):
                continue
            if isinstance(got, dict):
                got = got.get("rows") or got.get("table") or [got]
            if isinstance(got, list):
                return got
        return None

    def promote(self, name: str, version: str, alias: str = "champion", force: bool = False) -> dict[str, Any]:
        """Promote ``version``. Default: the registry's gated promotion (:func:`flowsense.models.registry.promote`:
        the version becomes challenger, and champion only if it beats the champion out of sample; the decision
        and its reason are returned and recorded in MLflow). ``force`` (or another alias than champion) points
        the alias at the version directly."""
        info = self.model(name)
        if not any(str(v["version"]) == str(version) for v in info["versions"]):
            raise NotFound(f"model {name!r} has no version {version!r}")
        previous = info["aliases"].get(alias)
        out: dict[str, Any] = {"name": name, "alias": alias, "version": int(version),
                               "previous": int(previous) if previous is not None else None}
        if alias == "champion" and not force:
            from flowsense.models import registry as reg

            d = reg.promote(name, str(version), settings=self.settings)
            out.update(promoted=bool(d.promoted), reason=d.reason, gated=True,
                       champion=int(version) if d.promoted else out["previous"])
        else:
            self.client().set_registered_model_alias(name, alias, str(version))
            out.update(promoted=True, reason="forced by an admin" if force else f"alias {alias} set", gated=False,
                       champion=int(version) if alias == "champion" else out["previous"])
        self._cache = _TTL(self._cache.ttl_s)
        return jsonable(out)


def _quote(s: str) -> str:
    return s.replace("'", "''")


def _metrics_table(metrics: dict[str, float]) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for k, v in metrics.items():
        who, sep, metric = k.partition(".")
        if not sep:
            who, metric = "model", k
        rows.setdefault(who, {"name": who})[metric] = v
    return sorted(rows.values(), key=lambda r: (r["name"] != "model", r["name"]))
