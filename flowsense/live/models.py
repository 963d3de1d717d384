"""Hot reload of the registry's champion: poll the alias, load in the background, swap between ticks.

:class:`ChampionHandle` polls ``champion_version(name)`` (one cheap registry query) every ``poll_s``
seconds in a background thread; when the alias moved it loads that exact version natively
(``load_model("models:/<name>/<version>")``: XGBoost booster / onnxruntime) - still in the background,
the worker keeps trading on the old model meanwhile - and parks it as *ready*. The worker calls
:meth:`ChampionHandle.swap_if_ready` before each decision: the swap is one reference assignment between
two ticks, so no tick is missed or decided by a half-loaded model, and no restart is needed.

The worker records each swap with the decision index where it took effect, and the model version in
effect with every order; a recovery replay after a restart re-applies the recorded swaps at the same
indices (:meth:`ChampionHandle.load_version`), so the rebuilt decisions are the ones that were made.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class ChampionHandle:
    def __init__(self, name: str, *, poll_s: float = 2.0, settings: Any = None,
                 loader: Callable[[str], tuple[Any, Any]] | None = None,
                 poller: Callable[[str], str | None] | None = None) -> None:
        from flowsense.models import registry

        self.name = registry.model_name(name)
        self.poll_s = poll_s
        self._settings = settings
        self._loader = loader or (lambda uri: registry.load_model(uri, self._settings))
        self._poller = poller or (lambda n: registry.champion_version(n, self._settings))
        self._lock = threading.Lock()
        self._current: tuple[Any, str | None] = (None, None)
        self._ready: tuple[Any, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cache: dict[str, Any] = {}
        self.polls = 0
        self.loads = 0
        self.last_error: str | None = None

    # ----------------------------------------------------------------------------- loading

    def load_version(self, version: str) -> Any:
        """Load (or reuse) one version synchronously and make it current (recovery, start)."""
        pred = self._load(version)
        with self._lock:
            self._current = (pred, version)
            if self._ready is not None and self._ready[1] == version:
                self._ready = None
        return pred

    def _load(self, version: str) -> Any:
        if version not in self._cache:
            pred, _info = self._loader(f"models:/{self.name}/{version}")
            self._cache[version] = pred
            self.loads += 1
        return self._cache[version]

    def poll_now(self) -> str | None:
        """One poll (and load, if the alias moved); returns the version made ready, if any."""
        self.polls += 1
        try:
            v = self._poller(self.name)
        except Exception as exc:  # registry briefly unreachable: keep trading on the current model
            self.last_error = f"{type(exc).__name__}: {exc}"
            return None
        with self._lock:
            cur = self._current[1]
            pending = self._ready[1] if self._ready else None
        if v is None or v in (cur, pending):
            return None
        try:
            pred = self._load(v)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return None
        with self._lock:
            self._ready = (pred, v)
        return v

    # ----------------------------------------------------------------------------- the worker's side

    def start(self) -> None:
        """Load the current champion (if any), then poll in the background."""
        v = self._poller(self.name)
        if v is not None:
            self.load_version(v)
        self._thread = threading.Thread(target=self._loop, name=f"champion-{self.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.poll_now()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def swap_if_ready(self) -> str | None:
        """Between two ticks: make a loaded new champion current. Returns its version, else None."""
        if self._ready is None:  # the common case: one attribute read, no lock
            return None
        with self._lock:
            ready, self._ready = self._ready, None
            if ready is None:
                return None
            self._current = ready
        return ready[1]

    def current(self) -> tuple[Any, str | None]:
        return self._current

    def wait_ready(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while self._ready is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._ready is not None
