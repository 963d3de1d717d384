"""A small PyTorch Transformer encoder over the last ``seq_len`` event feature vectors.

Input per event: :data:`flowsense.models.dataset.SEQ_FEATURES` (raw values; the network standardises them
with training means/deviations stored as buffers, maps NaN to 0 and clips to +/-10, so the exported graph
takes the same raw vectors the worker has). The window for event ``t`` is rows ``t-seq_len+1..t`` of the
rows given (zero-padded before the first); no masking at day boundaries, so the first ``seq_len`` events
of a day see the end of the previous one in multi-day data. Linear embedding + learned positions ->
``n_layers`` encoder layers (``d_model``, ``n_heads``, no dropout) -> the last position -> 2 logits ->
softmax ``[P(down), P(up)]``.

CPU sizes: defaults ``seq_len=32, d_model=16, n_heads=2, n_layers=1`` (~3k parameters), at most
``max_train_seq`` labelled windows (evenly spaced), ``epochs`` passes of Adam; early stopping on the
validation loss when one is given. Exported with ``torch.onnx.export`` (TorchScript exporter, dynamic
batch); :meth:`TransformerModel.to_onnx` returns the bytes; a saved model is reloaded as an onnxruntime
session (no torch needed to predict).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from flowsense.models.base import DirectionModel, ModelError

DEFAULTS: dict[str, Any] = {"seq_len": 32, "d_model": 16, "n_heads": 2, "n_layers": 1, "ff": 32, "epochs": 3,
                            "batch": 256, "lr": 3e-3, "max_train_seq": 12_000, "seed": 0, "threads": 2}


def windows(X: np.ndarray, seq_len: int) -> np.ndarray:
    """``(n, seq_len, f)`` float32 windows ending at each row (zero rows before the first)."""
    X = np.asarray(X, dtype=np.float32)
    pad = np.zeros((seq_len - 1, X.shape[1]), dtype=np.float32)
    Z = np.concatenate([pad, X], axis=0)
    w = np.lib.stride_tricks.sliding_window_view(Z, (seq_len, X.shape[1]))[:, 0]
    return w  # a view; callers index it (copy) in batches


def _build(n_features: int, p: dict[str, Any], mu: np.ndarray, sd: np.ndarray) -> Any:
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
            self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
            self.inp = nn.Linear(n_features, int(p["d_model"]))
            self.pos = nn.Parameter(torch.zeros(int(p["seq_len"]), int(p["d_model"])))
            layer = nn.TransformerEncoderLayer(int(p["d_model"]), int(p["n_heads"]), int(p["ff"]), dropout=0.0,
                                               batch_first=True)
            self.enc = nn.TransformerEncoder(layer, int(p["n_layers"]), enable_nested_tensor=False)
            self.out = nn.Linear(int(p["d_model"]), 2)

        def logits(self, x: Any) -> Any:
            z = (x - self.mu) / self.sd
            z = torch.where(torch.isnan(z), torch.zeros_like(z), z).clamp(-10.0, 10.0)
            h = self.enc(self.inp(z) + self.pos)
            return self.out(h[:, -1])

        def forward(self, x: Any) -> Any:
            return torch.softmax(self.logits(x), dim=-1)

    return Net()


class TransformerModel(DirectionModel):
    kind = "transformer"

    def __init__(self, feature_names: list[str], **params: Any) -> None:
        super().__init__(feature_names, **{**DEFAULTS, **params})
        self.net: Any = None
        self.session: Any = None
        self._onnx: bytes | None = None

    @property
    def seq_len(self) -> int:
        return int(self.params["seq_len"])

    def _fit(self, X, y, X_val, y_val) -> None:
        import torch

        p = self.params
        torch.manual_seed(int(p["seed"]))
        torch.set_num_threads(int(p["threads"]))
        ok = np.flatnonzero(np.isfinite(y))
        if ok.size < 50 or len(np.unique(y[ok])) < 2:
            raise ModelError("transformer: fewer than 50 labelled training events or one class only")
        if ok.size > p["max_train_seq"]:
            ok = ok[np.linspace(0, ok.size - 1, int(p["max_train_seq"])).astype(np.int64)]
        mu = np.nan_to_num(np.nanmean(X, axis=0))
        sd = np.nanstd(X, axis=0)
        sd = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.net = _build(X.shape[1], p, mu, sd)
        W = windows(X, self.seq_len)
        xs = torch.from_numpy(np.ascontiguousarray(W[ok]))
        ys = torch.from_numpy(y[ok].astype(np.int64))
        val = None
        if X_val is not None and y_val is not None and np.isfinite(y_val).sum() >= 50:
            v = np.flatnonzero(np.isfinite(y_val))
            v = v[np.linspace(0, v.size - 1, min(v.size, 4000)).astype(np.int64)]
            Wv = windows(np.concatenate([X[-(self.seq_len - 1):], X_val]) if X.shape[0] >= self.seq_len else X_val,
                         self.seq_len)
            off = min(self.seq_len - 1, X.shape[0]) if X.shape[0] >= self.seq_len else 0
            val = (torch.from_numpy(np.ascontiguousarray(Wv[v + off])), torch.from_numpy(y_val[v].astype(np.int64)))
        opt = torch.optim.Adam(self.net.parameters(), lr=float(p["lr"]))
        lossf = torch.nn.CrossEntropyLoss()
        gen = torch.Generator().manual_seed(int(p["seed"]))
        best, best_state, hist = np.inf, None, []
        for _ in range(int(p["epochs"])):
            self.net.train()
            perm = torch.randperm(xs.shape[0], generator=gen)
            for i in range(0, xs.shape[0], int(p["batch"])):
                idx = perm[i: i + int(p["batch"])]
                opt.zero_grad()
                loss = lossf(self.net.logits(xs[idx]), ys[idx])
                loss.backward()
                opt.step()
            self.net.eval()
            if val is not None:
                with torch.no_grad():
                    vl = float(lossf(self.net.logits(val[0]), val[1]))
                hist.append(vl)
                if vl < best:
                    best, best_state = vl, {k: t.clone() for k, t in self.net.state_dict().items()}
        if best_state is not None:
            self.net.load_state_dict(best_state)
        self.net.eval()
        self._onnx = None
        self.info = {"n_train": int(ok.size), "val_loss_per_epoch": hist,
                     "n_params": int(sum(t.numel() for t in self.net.parameters()))}

    def predict_windows(self, W: np.ndarray) -> np.ndarray:
        """``[P(down), P(up)]`` for ``(n, seq_len, f)`` windows (torch when fitted here, else onnxruntime)."""
        W = np.ascontiguousarray(W, dtype=np.float32)
        if self.net is not None:
            import torch

            with torch.no_grad():
                return self.net(torch.from_numpy(W)).numpy().astype(np.float64)
        if self.session is None:
            raise ModelError("transformer: not fitted")
        return self.session.run(None, {"x": W})[0].astype(np.float64)

    def p_up(self, X: np.ndarray) -> np.ndarray:
        W = windows(self._check(X), self.seq_len)
        out = np.empty(W.shape[0])
        for i in range(0, W.shape[0], 4096):
            out[i: i + 4096] = self.predict_windows(W[i: i + 4096])[:, 1]
        return out

    def to_onnx(self) -> bytes:
        """The network as ONNX bytes: input ``x`` ``(batch, seq_len, f)`` float32, output ``proba`` ``(batch, 2)``."""
        if self._onnx is not None:
            return self._onnx
        if self.net is None:
            raise ModelError("transformer: not fitted")
        import torch

        buf = io.BytesIO()
        x = torch.zeros(2, self.seq_len, len(self.feature_names))
        torch.onnx.export(self.net, (x,), buf, input_names=["x"], output_names=["proba"],
                          dynamic_axes={"x": {0: "batch"}, "proba": {0: "batch"}}, dynamo=False)
        self._onnx = buf.getvalue()
        return self._onnx

    def _save(self, path: Path) -> dict[str, Any]:
        (path / "model.onnx").write_bytes(self.to_onnx())
        if self.net is not None:
            import torch

            torch.save(self.net.state_dict(), path / "model.pt")
        return {"file": "model.onnx", "seq_len": self.seq_len}

    def _load(self, path: Path, extra: dict[str, Any]) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self._onnx = (path / extra.get("file", "model.onnx")).read_bytes()
        self.session = ort.InferenceSession(self._onnx, sess_options=opts, providers=["CPUExecutionProvider"])


MODEL_CLASS = TransformerModel
