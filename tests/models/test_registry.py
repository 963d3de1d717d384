"""MLflow registry on real SQLite in a temporary FLOWSENSE_HOME: logging, tags, native loading, promotion."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowsense.config import Settings
from flowsense.models import registry as reg

FEATURES = ["ofi", "qi", "spread"]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES))).astype(np.float32)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.8, size=n) > 0, 1, -1)
    return X, y


class TinyBooster:
    """A throwaway XGBoost model with the shape of flowsense.models (fit / predict_proba / booster)."""

    def __init__(self, rounds: int = 20) -> None:
        self.rounds = rounds
        self.feature_names = list(FEATURES)
        self.booster = None

    def fit(self, X: np.ndarray, y: np.ndarray) -> TinyBooster:
        import xgboost as xgb

        d = xgb.DMatrix(X, label=(y > 0).astype(np.float32))
        self.booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1}, d, self.rounds)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = self.booster.inplace_predict(np.asarray(X, dtype=np.float32))
        return np.column_stack([1 - p, p])

    def feature_importance(self) -> dict[str, float]:
        raw = self.booster.get_score(importance_type="gain")
        return {FEATURES[int(k[1:])]: v for k, v in raw.items()}


class SignModel:
    """A throwaway no-library model saved with save(dir)/load(dir): P(up) from the sign of one column."""

    def __init__(self, column: int = 0, sharpness: float = 1.0) -> None:
        self.column, self.sharpness = column, sharpness
        self.feature_names = list(FEATURES)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-self.sharpness * np.asarray(X)[:, self.column]))
        return np.column_stack([1 - p, p])

    def save(self, d: Path) -> None:
        (Path(d) / "sign.json").write_text(json.dumps({"column": self.column, "sharpness": self.sharpness}))

    @classmethod
    def load(cls, d: Path) -> SignModel:
        return cls(**json.loads((Path(d) / "sign.json").read_text()))


def _oos(model, X: np.ndarray, y: np.ndarray) -> pl.DataFrame:
    p = model.predict_proba(X)[:, 1]
    n = len(y)
    return pl.DataFrame({
        "symbol": ["AAA"] * n, "date": [dt.date(2024, 1, 3)] * n, "seq": np.arange(n), "horizon": ["next_move"] * n,
        "fold": np.arange(n) * 3 // n, "y": y.astype(np.int8), "pred": np.where(p > 0.5, 1, -1).astype(np.int8),
        "p_up": p,
    })


def _log(model, X, y, settings, **kw):
    return reg.log_version(
        model, model_type=kw.pop("model_type", "tiny"), feature_names=FEATURES, horizon="next_move",
        data_version="dvc-abc123", train_start=dt.date(2024, 1, 2), train_end=dt.date(2024, 1, 2),
        symbols=["AAA"], folds=[{"fold": 0, "test_start": "2024-01-03T14:30:00Z"}],
        params={"rounds": 20}, metrics={"accuracy": 0.6}, oos=_oos(model, X, y),
        fold_metrics=[{"fold": 0, "accuracy": 0.6, "n": 10}, {"fold": 1, "accuracy": 0.62, "n": 10}],
        settings=settings, **kw,
    )


def test_log_register_load_native_and_promote(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # artifacts must not land in ./mlruns
    settings = Settings.from_env()
    assert settings.mlflow_uri == f"sqlite:///{home}/mlflow.db" and settings.mlflow_uri.startswith("sqlite:////")
    Xtr, ytr = _data(600, 1)
    Xte, yte = _data(3000, 2)

    good = TinyBooster(30).fit(Xtr, ytr)
    v1 = _log(good, Xte, yte, settings)
    assert v1.name == "flowsense-tiny" and v1.version == "1"
    assert v1.data_version == "dvc-abc123" and v1.feature_names == FEATURES and v1.kind == "xgboost"
    assert v1.train_end == dt.date(2024, 1, 2) and v1.folds[0]["fold"] == 0
    assert v1.code_revision and v1.code_revision != ""
    assert (home / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    assert any((home / "mlflow-artifacts").rglob("MLmodel"))
    reqs = next((home / "mlflow-artifacts").rglob("requirements.txt")).read_text()
    assert "xgboost==" in reqs and "mlflow==" in reqs

    run = reg.client(settings).get_run(v1.run_id)
    assert run.data.metrics["accuracy"] == pytest.approx(0.6)
    hist = reg.client(settings).get_metric_history(v1.run_id, "fold_accuracy")
    assert sorted(m.step for m in hist) == [0, 1]
    arts = {a.path for a in reg.client(settings).list_artifacts(v1.run_id, "plots")}
    assert "plots/feature_importance.png" in arts

    assert reg.champion_version("tiny", settings) is None
    d1 = reg.promote("tiny", v1.version, settings=settings)
    assert d1.promoted and reg.champion_version("flowsense-tiny", settings) == "1"

    pred, info = reg.load_model("models:/flowsense-tiny@champion", settings)
    # the booster compiled to an ONNX tree ensemble (the live path), equal to the booster within 1e-5
    assert isinstance(pred, reg.TreeOnnxPredictor) and info.version == "1" and pred.feature_names == FEATURES
    np.testing.assert_allclose(pred.predict_proba(Xte), good.predict_proba(Xte), atol=1e-5, rtol=0)
    missing = Xte[:200].copy()
    missing[::3, 0] = np.nan  # missing values follow the trees' default branches in both
    np.testing.assert_allclose(pred.predict_proba(missing), good.predict_proba(missing), atol=1e-5, rtol=0)
    native = reg.BoosterPredictor(pred.booster, FEATURES, info.classes)  # the fallback path
    np.testing.assert_allclose(native.predict_proba(Xte[:50]), good.predict_proba(Xte[:50]), rtol=1e-6)
    assert pred.predict_proba(Xte[0]).shape == (1, 2)  # one event, as the worker calls it

    # a worse challenger (1 boosting round, a weaker signal) stays challenger
    weak = SignModel(column=2)  # the noise column
    v2 = _log(weak, Xte, yte, settings)
    d2 = reg.promote("tiny", v2.version, settings=settings)
    assert not d2.promoted and d2.comparison is not None and d2.comparison.n == 3000
    assert d2.comparison.acc_champion > d2.comparison.acc_challenger
    assert reg.champion_version("tiny", settings) == "1"
    assert reg.resolve("tiny@challenger", settings).version == "2"

    # a python-flavoured model loads with its own load(), and the same events decide
    better = SignModel(column=0, sharpness=3.0)
    v3 = _log(better, Xte, yte, settings)
    d3 = reg.promote("tiny", v3.version, settings=settings)
    # the oracle column alone vs a booster on both columns: the decision follows the McNemar test either way
    assert d3.comparison is not None and d3.promoted == (
        d3.comparison.acc_challenger > d3.comparison.acc_champion and d3.comparison.p_value < 0.05)
    pred3, info3 = reg.load_model("flowsense-tiny/3", settings)
    assert isinstance(pred3, reg.PythonPredictor) and info3.kind == "python"
    np.testing.assert_allclose(pred3.predict_proba(Xte[:5]), better.predict_proba(Xte[:5]))

    # every decision is recorded as a run and on the version
    runs = reg.client(settings).search_runs([reg.experiment_id(reg.PROMOTIONS_EXPERIMENT, settings)])
    assert len(runs) == 3 and {r.data.tags["promoted"] for r in runs} >= {"true", "false"}
    v2_now = reg.resolve("flowsense-tiny/2", settings)
    assert v2_now.tags["promotion_decision"].startswith("kept: not better")
    listed = reg.versions("tiny", settings)
    assert [v.version for v in listed] == ["3", "2", "1"]


def test_promotion_requires_significance(home: Path) -> None:
    """A challenger that is better by chance on few events is not promoted (McNemar p >= alpha)."""
    assert reg.mcnemar_one_sided(10, 0) == pytest.approx(0.5 ** 10)
    assert reg.mcnemar_one_sided(5, 5) > 0.5
    rng = np.random.default_rng(0)
    y = rng.choice([-1, 1], 400).astype(np.int8)
    base = pl.DataFrame({"symbol": ["A"] * 400, "date": [dt.date(2024, 1, 2)] * 400, "seq": np.arange(400),
                         "horizon": ["next_move"] * 400, "fold": np.zeros(400, dtype=np.int64), "y": y})
    champ = base.with_columns(pred=pl.Series(np.where(rng.random(400) < 0.55, y, -y)).cast(pl.Int8))
    chal = base.with_columns(pred=pl.Series(np.where(rng.random(400) < 0.9, y, -y)).cast(pl.Int8))
    cmp_ = reg.compare_oos(chal, champ)
    assert cmp_.n == 400 and cmp_.p_value < 1e-6 and cmp_.acc_challenger > 0.85
    # events the champion never scored are not compared
    assert reg.compare_oos(chal, champ.filter(pl.col("seq") < 100)).n == 100


def test_errors_are_one_line(home: Path) -> None:
    settings = Settings.from_env()
    with pytest.raises(reg.RegistryError, match="flowsense-nope has no alias 'champion'"):
        reg.load_model("nope", settings)
    with pytest.raises(reg.RegistryError, match="bad model version"):
        reg.parse_uri("flowsense-x/abc")
    assert reg.parse_uri("models:/flowsense-xgboost@champion") == ("flowsense-xgboost", None, "champion")
    assert reg.parse_uri("xgboost/4") == ("flowsense-xgboost", "4", None)
    assert os.environ["FLOWSENSE_HOME"] == str(home)


class TinyNet:
    """A throwaway sequence network exported to ONNX (the Transformer's serving path)."""

    seq_len = 4
    onnx_outputs_logits = True

    def __init__(self) -> None:
        import torch

        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(self.seq_len * len(FEATURES), 2))
        self.feature_names = list(FEATURES)

    def to_onnx(self) -> bytes:
        import io

        import torch

        buf = io.BytesIO()
        torch.onnx.export(self.net, (torch.zeros(1, self.seq_len, len(FEATURES)),), buf, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "n"}}, dynamo=False)
        return buf.getvalue()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return torch.softmax(self.net(torch.as_tensor(X, dtype=torch.float32)), -1).numpy()


def test_onnx_version_loads_into_onnxruntime(home: Path) -> None:
    settings = Settings.from_env()
    net = TinyNet()
    X = np.random.default_rng(3).normal(size=(8, net.seq_len, len(FEATURES))).astype(np.float32)
    info = reg.log_version(net, model_type="tinynet", feature_names=FEATURES, horizon="100ms", data_version=None,
                           train_start=dt.date(2024, 1, 2), train_end=dt.date(2024, 1, 5), settings=settings)
    assert info.kind == "onnx" and info.data_version == "untracked"
    pred, got = reg.load_model("tinynet/1", settings)
    assert isinstance(pred, reg.OnnxPredictor) and got.horizon == "100ms"
    np.testing.assert_allclose(pred.predict_proba(X), net.predict_proba(X), atol=1e-5)
    assert pred.predict_proba(X[0]).shape == (1, 2)  # one sequence
