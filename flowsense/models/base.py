"""One shape for every direction model: ``fit`` / ``predict_proba`` / ``save`` / ``load``.

* ``X`` is a 2-D float64 array whose columns are exactly :attr:`DirectionModel.feature_names`, rows in time
  order (one per book event). Sequence and point-process models (Transformer, Hawkes) read the rows
  before each one as its history, so pass every event of the window, scored or not.
* ``y`` is float: ``1.0`` up, ``0.0`` down, ``NaN`` not scored (no move, purged, or warm-up). Models fit on
  the finite labels only.
* :meth:`p_up` returns ``P(up)``, shape ``(n,)``; :meth:`predict_proba` returns ``(n, 2)`` with columns
  for the classes :data:`CLASSES` ``[-1, +1]`` (down, up), as the registry's predictors do. A *no-fit*
  baseline (:attr:`probabilistic` false) returns hard 0/1 and ``0.5`` where its predictor is 0
  (:attr:`abstains`: those events are left out of its accuracy and counted as ``n_excluded``).
* :meth:`save` writes a folder: ``meta.json`` (class, name, feature names, parameters, training window)
  plus the model's own native files; :func:`load_model_dir` reads any of them back (native inference:
  XGBoost booster, onnxruntime session for the neural models).
* ``train_window`` ``(first_ts_ns, last_label_end_ns)``: the span of data the model learned from (labels
  included), set by the walk-forward; :func:`flowsense.models.folds.assert_not_peeking` refuses to score
  a model on a window that overlaps it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from flowsense.errors import FlowSenseError

META = "meta.json"
CLASSES: tuple[int, int] = (-1, 1)


class ModelError(FlowSenseError):
    """A model cannot be fitted, loaded or applied (bad shape, missing file, unknown class)."""


class DirectionModel(ABC):
    """Base class: subclasses set :attr:`kind`, implement ``_fit``/``predict_proba``/``_save``/``_load``."""

    kind: ClassVar[str] = "base"
    probabilistic: ClassVar[bool] = True
    abstains: ClassVar[bool] = False

    def __init__(self, feature_names: list[str], **params: Any) -> None:
        self.feature_names = list(feature_names)
        self.params: dict[str, Any] = dict(params)
        self.train_window: tuple[int, int] | None = None
        self.info: dict[str, Any] = {}  # fitted diagnostics (JSON-serialisable)

    @property
    def name(self) -> str:
        return self.kind

    # ---- API -----------------------------------------------------------------------------------
    def fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None) -> DirectionModel:
        X = self._check(X)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (X.shape[0],):
            raise ModelError(f"{self.kind}: y has shape {y.shape}, expected ({X.shape[0]},)")
        if X_val is not None:
            X_val = self._check(X_val)
            y_val = np.asarray(y_val, dtype=np.float64)
        self._fit(X, y, X_val, y_val)
        return self

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray | None, y_val: np.ndarray | None) -> None: ...

    @abstractmethod
    def p_up(self, X: np.ndarray) -> np.ndarray:
        """``P(up)`` per row, shape ``(n,)``."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(n, 2)``: ``[P(down), P(up)]`` per row (classes :data:`CLASSES`); one row ``(f,)`` is allowed."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim == 1:
            X = X[None, :]
        p = self.p_up(X)
        return np.column_stack([1.0 - p, p])

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        extra = self._save(path) or {}
        meta = {"class": self.kind, "feature_names": self.feature_names, "params": self.params,
                "train_window": list(self.train_window) if self.train_window else None,
                "info": self.info, "extra": extra}
        (path / META).write_text(json.dumps(meta, indent=2, default=_json_default))
        return path

    def _save(self, path: Path) -> dict[str, Any] | None:  # pragma: no cover - overridden
        return None

    @classmethod
    def load(cls, path: str | Path) -> DirectionModel:
        path = Path(path)
        meta = read_meta(path)
        obj = cls(meta["feature_names"], **meta["params"])
        obj.train_window = tuple(meta["train_window"]) if meta.get("train_window") else None  # type: ignore[assignment]
        obj.info = meta.get("info", {})
        obj._load(path, meta.get("extra") or {})
        return obj

    def _load(self, path: Path, extra: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Read the model's own files back (no-op for models whose state is all in ``meta.json``)."""

    # ---- helpers -------------------------------------------------------------------------------
    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ModelError(f"{self.kind}: X has shape {X.shape}, expected (n, {len(self.feature_names)}) "
                             f"for features {self.feature_names[:5]}...")
        return X

    def col(self, X: np.ndarray, name: str) -> np.ndarray:
        return X[:, self.feature_names.index(name)]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def read_meta(path: str | Path) -> dict[str, Any]:
    p = Path(path) / META
    if not p.exists():
        raise ModelError(f"{p}: no model metadata (not a saved model folder)")
    return json.loads(p.read_text())


def model_classes() -> dict[str, type[DirectionModel]]:
    """Every model class by :attr:`DirectionModel.kind` (imported lazily: torch/tick are heavy)."""
    from flowsense.models import baselines, xgb

    out: dict[str, type[DirectionModel]] = {c.kind: c for c in (*baselines.BASELINE_CLASSES, xgb.XGBoostModel)}
    for mod in ("hawkes", "transformer", "graph", "ensemble"):
        try:
            m = __import__(f"flowsense.models.{mod}", fromlist=["MODEL_CLASS"])
        except ImportError:  # pragma: no cover - module not present yet
            continue
        out[m.MODEL_CLASS.kind] = m.MODEL_CLASS
    return out


def load_model_dir(path: str | Path) -> DirectionModel:
    """Load any saved model folder (dispatch on ``meta.json``'s class)."""
    meta = read_meta(path)
    classes = model_classes()
    if meta["class"] not in classes:
        raise ModelError(f"{Path(path) / META}: unknown model class {meta['class']!r}; have {sorted(classes)}")
    return classes[meta["class"]].load(path)


def finite_rows(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with a finite label."""
    return np.isfinite(y)
