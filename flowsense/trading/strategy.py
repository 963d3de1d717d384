"""The strategy interface shared by the backtest engine and the live worker.

A strategy is two things (as NautilusTrader's ``StrategyConfig`` / ``Strategy``):

* a **config**: a frozen, validated, serialisable :class:`StrategyConfig` subclass (``to_dict`` /
  ``from_dict``, :func:`load_strategy_config` from a JSON or YAML file). It holds parameters only;
* a **stateful object** made from it (:meth:`StrategyConfig.create` / :func:`make_strategy`) that
  implements :class:`Strategy`: it sees the market through a :class:`~flowsense.trading.view.BookView`
  on its own, latency-delayed clock, answers each book update with a list of
  :class:`~flowsense.trading.orders.OrderRequest` / :class:`~flowsense.trading.orders.CancelRequest`,
  and is told of its fills and order state changes.

A file or dict names a built-in by ``strategy`` (``{"strategy": "ofi_threshold", "config": {...}}``) or
any importable config class by ``strategy_path`` (``{"strategy_path": "pkg.mod:MyConfig", "config":
{...}}``, like NautilusTrader's ``ImportableStrategyConfig``).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from flowsense.errors import ConfigError
from flowsense.trading.orders import Fill, OrderReport, Request
from flowsense.trading.view import BookView, LookaheadError

__all__ = ["ConfigError", "LookaheadError", "Strategy", "StrategyConfig", "load_strategy_config",
           "make_strategy", "strategy_configs"]


@runtime_checkable
class Strategy(Protocol):
    """What the engine and the live worker call. ``on_order``/``on_end``/``reset`` are optional."""

    def on_book(self, view: BookView) -> Sequence[Request] | None: ...

    def on_fill(self, fill: Fill) -> None: ...


class StrategyBase:
    """Convenience base for stateful strategies: keeps the config, no-op callbacks."""

    def __init__(self, config: StrategyConfig) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        """Forget all state (the engine calls it before a run)."""

    def on_book(self, view: BookView) -> Sequence[Request] | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_fill(self, fill: Fill) -> None:
        pass

    def on_order(self, report: OrderReport) -> None:
        pass


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


@dataclasses.dataclass(frozen=True, slots=True)
class StrategyConfig:
    """Base of strategy configs: frozen dataclass fields are the parameters (no mutable state here).

    Subclasses set ``name`` (the registry key, e.g. ``"ofi_threshold"``) and ``strategy_class`` (the
    stateful class :meth:`create` instantiates) and may override :meth:`validate`. Field types
    ``int``/``float``/``bool``/``str`` are checked (an ``int`` field refuses ``1.5`` and ``True``; a
    ``float`` field accepts an ``int``) and bad values raise :class:`~flowsense.errors.ConfigError`
    with a one-line message.
    """

    name: ClassVar[str] = ""
    strategy_class: ClassVar[type | None] = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            want = _SCALARS.get(str(f.type).split("|")[0].strip())
            v = getattr(self, f.name)
            if want is None:
                continue
            if want is float and isinstance(v, int) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v))
            elif want is int and isinstance(v, float) and v.is_integer():
                object.__setattr__(self, f.name, int(v))
            elif not isinstance(v, want) or (want is not bool and isinstance(v, bool)):
                raise ConfigError(f"{self._label()}: {f.name} must be {want.__name__}, got {v!r}")
            if want is float and not math.isfinite(getattr(self, f.name)):
                raise ConfigError(f"{self._label()}: {f.name} must be finite, got {v!r}")
        self.validate()

    @classmethod
    def _label(cls) -> str:
        return cls.name or cls.__name__

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values the strategy cannot run with (override)."""

    def _require(self, ok: bool, field: str, rule: str) -> None:
        if not ok:
            raise ConfigError(f"{self._label()}: {field} must be {rule}, got {getattr(self, field)!r}")

    # ------------------------------------------------------------------ serialisation

    def params(self) -> dict[str, Any]:
        """The parameters as a plain dict (field name -> value)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def to_dict(self) -> dict[str, Any]:
        """``{"strategy": name, "config": params}`` for a registered built-in, else
        ``{"strategy_path": "module:Class", "config": params}``; :meth:`from_dict` reverses it."""
        if self.name and strategy_configs().get(self.name) is type(self):
            return {"strategy": self.name, "config": self.params()}
        cls = type(self)
        return {"strategy_path": f"{cls.__module__}:{cls.__qualname__}", "config": self.params()}

    @staticmethod
    def from_dict(data: Mapping[str, Any], *, source: str = "strategy config") -> StrategyConfig:
        """A config from ``to_dict``'s shape (``config`` may be omitted for the defaults)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected a mapping with 'strategy' or 'strategy_path', got "
                              f"{type(data).__name__}")
        extra = set(data) - {"strategy", "strategy_path", "config"}
        if extra:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(sorted(extra))} "
                              "(expected strategy or strategy_path, and config)")
        params = data.get("config") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{source}: 'config' must be a mapping of parameters")
        if "strategy_path" in data:
            cls = _import_config(str(data["strategy_path"]), source)
        elif "strategy" in data:
            reg = strategy_configs()
            name = str(data["strategy"])
            if name not in reg:
                raise ConfigError(f"{source}: unknown strategy {name!r}; built-in strategies: {', '.join(reg)}")
            cls = reg[name]
        else:
            raise ConfigError(f"{source}: needs 'strategy' (a built-in name) or 'strategy_path' (module:Class)")
        return cls.from_params(params, source=source)

    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, source: str = "") -> StrategyConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in params if k not in known]
        if unknown:
            where = f"{source}: " if source else ""
            raise ConfigError(f"{where}unknown parameter {unknown[0]!r} for {cls._label()}; parameters: "
                              f"{', '.join(sorted(known)) or 'none'}")
        try:
            return cls(**dict(params))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None

    def create(self) -> Any:
        """A fresh stateful strategy object for this config."""
        if self.strategy_class is None:
            raise ConfigError(f"{self._label()}: no strategy class to create")
        return self.strategy_class(self)


def _import_config(path: str, source: str) -> type[StrategyConfig]:
    mod_name, sep, attr = path.partition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"{source}: strategy_path {path!r} must be 'module:ConfigClass'")
    try:
        obj: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{source}: cannot import strategy_path {path!r}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, StrategyConfig)):
        raise ConfigError(f"{source}: strategy_path {path!r} is not a StrategyConfig subclass")
    return obj


def strategy_configs() -> dict[str, type[StrategyConfig]]:
    """The built-in strategy configs by name."""
    from flowsense.trading.strategies import STRATEGY_CONFIGS

    return STRATEGY_CONFIGS


def load_strategy_config(path: str | Path) -> StrategyConfig:
    """A config from a ``.json`` or ``.yaml``/``.yml`` file holding :meth:`StrategyConfig.to_dict`'s shape."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read strategy config: {exc.strerror or exc}") from None
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
            raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return StrategyConfig.from_dict(data, source=str(p))


def make_strategy(config: StrategyConfig | Mapping[str, Any] | str | Path) -> Any:
    """A fresh stateful strategy from a config object, a ``to_dict`` mapping, a built-in name, or a
    JSON/YAML file path."""
    if isinstance(config, StrategyConfig):
        return config.create()
    if isinstance(config, Mapping):
        return StrategyConfig.from_dict(config).create()
    if isinstance(config, str) and config in strategy_configs():
        return strategy_configs()[config]().create()
    if isinstance(config, str | Path) and Path(config).suffix.lower() in (".json", ".yaml", ".yml"):
        return load_strategy_config(config).create()
    raise ConfigError(f"cannot make a strategy from {config!r}: expected a StrategyConfig, a mapping, a "
                      f"built-in name ({', '.join(strategy_configs())}) or a .json/.yaml file")
