"""Cross-asset graph model: one message-passing layer over symbols, edges from rolling return correlations.

Nodes are the symbols (node 0 = the symbol being predicted, then the others sorted). Node features
``x_k = (g{k}_ofi, g{k}_ret)``: the last closed 1 s bar's OFI (scaled by that symbol's trailing mean absolute
OFI) and mid return (bps) - lagged cross-asset order flow. Edge weights ``A_ij = gc_{i}_{j}``: trailing
correlation of 1 s returns over ``corr_window`` bars (:func:`flowsense.models.dataset.add_cross_asset`),
``A_ii = 1``, rows normalised by ``sum_j |A_ij|``. One layer ``H = tanh(X W_self + A X W_nb)``, then node 0's
embedding concatenated with the own-event features ``ofi_sum_10, qi_l1, micro_rel`` -> logistic output.
Plain torch (no torch-geometric); exported to ONNX like the Transformer (:meth:`GraphModel.to_onnx`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from flowsense.models.base import DirectionModel, ModelError

OWN = ("ofi_sum_10", "qi_l1", "micro_rel")
DEFAULTS: dict[str, Any] = {"hidden": 8, "epochs": 4, "batch": 512, "lr": 5e-3, "max_train_rows": 20_000, "seed": 0,
                            "threads": 2}


def graph_inputs(data: Any) -> list[str]:
    """The graph model's columns present in ``data``'s frame: node features, edges, own features."""
    k = 0
    while f"g{k}_ofi" in data.frame.columns:
        k += 1
    if k == 0:
        raise ModelError("graph: no cross-asset columns (call flowsense.models.dataset.add_cross_asset first)")
    from flowsense.models.dataset import graph_columns

    return graph_columns(k) + [c for c in OWN if c in data.frame.columns]


def _n_nodes(names: list[str]) -> int:
    return sum(1 for c in names if c.startswith("g") and c.endswith("_ofi") and c[1:-4].isdigit())


def _build(K: int, n_own: int, p: dict[str, Any], mu: np.ndarray, sd: np.ndarray) -> Any:
    import torch
    from torch import nn

    iu = np.triu_indices(K, 1)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.register_buffer("iu0", torch.tensor(iu[0], dtype=torch.long))
            self.register_buffer("iu1", torch.tensor(iu[1], dtype=torch.long))
            h = int(p["hidden"])
            self.w_self = nn.Linear(2, h)
            self.w_nb = nn.Linear(2, h, bias=False)
            self.head = nn.Linear(h + n_own, 2)

        def logits(self, x: Any) -> Any:
            x = torch.where(torch.isnan(x), torch.zeros_like(x), x)
            b = x.shape[0]
            nodes = ((x[:, : 2 * K] - self.mu[: 2 * K]) / self.sd[: 2 * K]).clamp(-10, 10).reshape(b, K, 2)
            corr = x[:, 2 * K: 2 * K + iu[0].size]
            A = torch.zeros(b, K, K, dtype=x.dtype)
            A[:, self.iu0, self.iu1] = corr
            A = A + A.transpose(1, 2) + torch.eye(K, dtype=x.dtype)
            A = A / A.abs().sum(dim=2, keepdim=True).clamp_min(1e-6)
            H = torch.tanh(self.w_self(nodes) + torch.bmm(A, self.w_nb(nodes)))
            own = ((x[:, 2 * K + iu[0].size:] - self.mu[2 * K + iu[0].size:]) / self.sd[2 * K + iu[0].size:]).clamp(-10, 10)
            return self.head(torch.cat([H[:, 0], own], dim=1))

        def forward(self, x: Any) -> Any:
            return torch.softmax(self.logits(x), dim=-1)

    return Net()


class GraphModel(DirectionModel):
    kind = "graph"

    def __init__(self, feature_names: list[str], **params: Any) -> None:
        super().__init__(feature_names, **{**DEFAULTS, **params})
        self.net: Any = None
        self.session: Any = None
        self._onnx: bytes | None = None

    def _fit(self, X, y, X_val, y_val) -> None:
        import torch

        p = self.params
        torch.manual_seed(int(p["seed"]))
        torch.set_num_threads(int(p["threads"]))
        K = _n_nodes(self.feature_names)
        n_own = len(self.feature_names) - 2 * K - K * (K - 1) // 2
        ok = np.flatnonzero(np.isfinite(y))
        if ok.size < 50 or len(np.unique(y[ok])) < 2:
            raise ModelError("graph: fewer than 50 labelled training events or one class only")
        if ok.size > p["max_train_rows"]:
            ok = ok[np.linspace(0, ok.size - 1, int(p["max_train_rows"])).astype(np.int64)]
        mu = np.nan_to_num(np.nanmean(X[ok], axis=0))
        sd = np.nanstd(X[ok], axis=0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.net = _build(K, n_own, p, mu, sd)
        xs = torch.from_numpy(X[ok].astype(np.float32))
        ys = torch.from_numpy(y[ok].astype(np.int64))
        opt = torch.optim.Adam(self.net.parameters(), lr=float(p["lr"]))
        lossf = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(int(p["seed"]))
        for _ in range(int(p["epochs"])):
            perm = torch.randperm(xs.shape[0], generator=gen)
            for i in range(0, xs.shape[0], int(p["batch"])):
                idx = perm[i: i + int(p["batch"])]
                opt.zero_grad()
                lossf(self.net.logits(xs[idx]), ys[idx]).backward()
                opt.step()
        self.net.eval()
        self._onnx = None
        self.info = {"n_train": int(ok.size), "n_nodes": K}

    def p_up(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X).astype(np.float32)
        if self.net is not None:
            import torch

            with torch.no_grad():
                return self.net(torch.from_numpy(X)).numpy()[:, 1].astype(np.float64)
        if self.session is None:
            raise ModelError("graph: not fitted")
        return self.session.run(None, {"x": X})[0][:, 1].astype(np.float64)

    def to_onnx(self) -> bytes:
        if self._onnx is not None:
            return self._onnx
        if self.net is None:
            raise ModelError("graph: not fitted")
        import torch

        buf = io.BytesIO()
        torch.onnx.export(self.net, (torch.zeros(2, len(self.feature_names)),), buf, input_names=["x"],
                          output_names=["proba"], dynamic_axes={"x": {0: "batch"}, "proba": {0: "batch"}},
                          dynamo=False)
        self._onnx = buf.getvalue()
        return self._onnx

    def _save(self, path: Path) -> dict[str, Any]:
        (path / "model.onnx").write_bytes(self.to_onnx())
        return {"file": "model.onnx"}

    def _load(self, path: Path, extra: dict[str, Any]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self._onnx = (path / extra.get("file", "model.onnx")).read_bytes()
        self.session = ort.InferenceSession(self._onnx, sess_options=opts, providers=["CPUExecutionProvider"])


MODEL_CLASS = GraphModel
