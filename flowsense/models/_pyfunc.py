"""The ``mlflow.pyfunc`` wrapper for models without a native MLflow flavour (HMM, Hawkes, linear, graph,
ensemble), so ``mlflow models serve`` works on every registered model. FlowSense itself never predicts
through it: :func:`flowsense.models.registry.load_model` loads the model natively. Imports mlflow at the
top, so it is imported only when a model is logged or served."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.pyfunc import PythonModel


class FlowSensePyfunc(PythonModel):
    def load_context(self, context: Any) -> None:
        d = Path(context.artifacts["model"])
        manifest = json.loads((d / "flowsense-model.json").read_text())
        module, _, qual = manifest["class"].partition(":")
        cls: Any = importlib.import_module(module)
        for part in qual.split("."):
            cls = getattr(cls, part)
        self.model = cls.load(d)

    def predict(self, context, model_input, params=None):  # untyped: MLflow validates typed inputs
        return np.asarray(self.model.predict_proba(np.asarray(model_input, dtype=np.float64)))
