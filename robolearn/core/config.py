"""Typed dataclass configs, YAML presets and dotted command-line overrides.

Configs are plain (nested) dataclasses that live next to the code they configure; every field has a
docstring (the string literal right below it), which :func:`field_docs` reads for ``--help``. Presets
are YAML files loaded into those dataclasses with :func:`load_config`; unknown keys and wrong types
raise :class:`ConfigError` naming the key, the file and the allowed keys. ``key.sub=value`` overrides
from the command line are applied with :func:`apply_overrides`: a value is read by its field's type, so
``viewer=off`` stays the string ``"off"`` for a ``str`` field and becomes ``False`` for a ``bool`` one.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import time
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file or override that does not fit its dataclass."""


class _OverrideText(str):
    """A command-line override value as typed: read by the type of the field it lands on (see :func:`_coerce`)."""

    def parsed(self) -> Any:
        """The value as a YAML scalar (or flow list/mapping); the text itself when it is not valid YAML."""
        if not self.strip():
            return ""
        try:
            return yaml.safe_load(str(self))
        except yaml.YAMLError:
            return str(self)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (converting where lossless); raise on mismatch."""
    if isinstance(value, _OverrideText):
        return _coerce_override(value, tp, where)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return _build(tp, value, where)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, where): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected float, got {value!r}")
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(f"{where}: {value} is too large for a float") from None
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected int, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected bool (true/false), got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected str, got {value!r}")
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def _coerce_override(text: _OverrideText, tp: Any, where: str) -> Any:
    """An override's value for a field of type ``tp``: its YAML reading when that fits (``3`` for an int,
    ``off`` for a bool), else the text itself when that fits (``off`` or ``3`` for a str field)."""
    value = text.parsed()
    try:
        return _coerce(value, tp, where)
    except ConfigError:
        if isinstance(value, str):
            raise
        try:
            return _coerce(str(text), tp, where)
        except ConfigError:
            pass
        if isinstance(value, (list, dict)):
            raise
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {str(text)!r}") from None


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    """``where`` is ``"<source>: <key.path>"`` or just ``"<source>:"`` at the top level."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    source, _, keypath = where.partition(": ")
    source = source.rstrip(":")
    for name in data:
        if name not in fields:
            key = f"{keypath}.{name}" if keypath else name
            raise ConfigError(
                f"{source}: unknown key '{key}' for {cls.__name__}; "
                f"allowed keys: {', '.join(sorted(fields))}"
            )
    kwargs = {}
    for name, value in data.items():
        key = f"{keypath}.{name}" if keypath else name
        kwargs[name] = _coerce(value, hints[name], f"{source}: {key}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:  # a __post_init__ check: still a config error, named by its source
        raise ConfigError(f"{source}: {keypath or cls.__name__}: {err}") from err


def from_dict(cls: type[T], data: dict[str, Any] | None, source: str = "<dict>") -> T:
    """Build dataclass ``cls`` from a nested mapping, rejecting unknown keys and wrong types.

    ``source`` (a file name) prefixes every error message.
    """
    return _build(cls, dict(data or {}), f"{source}:")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain nested dicts/lists (tuples become lists), ready for YAML."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override '{dotted}': '{part}' is not a section")
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """Turn ``["env.num_envs=16", "seed=3"]`` into a nested dict of the values as typed (``str``
    subclasses that :func:`from_dict` reads by each field's type)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key.sub=value")
        key, raw = item.split("=", 1)
        if not key.strip() or any(not part for part in key.strip().split(".")):
            raise ConfigError(f"override '{item}': empty key")
        _set_dotted(nested, key.strip(), _OverrideText(raw))
    return nested


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """Return a new config with dotted ``key=value`` overrides applied (type-checked)."""
    merged = _merge(to_dict(cfg), parse_overrides(overrides))
    return from_dict(type(cfg), merged, "command line")


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Load ``cls`` from a YAML preset (optional), then apply dotted overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
        data = loaded or {}
    cfg = from_dict(cls, data, str(path) if path else "<defaults>")
    return apply_overrides(cfg, overrides) if overrides else cfg


def load_run_config(cls: type[T], path: str | Path | None, overrides: list[str], run_dir: str | Path | None = None,
                    resume: bool = False) -> T:
    """A run's config: from the preset ``path``, or with ``resume`` from ``<run_dir>/config.yaml`` (the run's
    resolved config); overrides apply on top of either."""
    if not resume:
        return load_config(cls, path, overrides)
    if not run_dir:
        raise ConfigError("--resume needs --run-dir (the run to continue)")
    saved = Path(run_dir) / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"--resume: {saved} not found")
    return load_config(cls, saved, overrides)


def make_run_dir(run_dir: str | Path | None, out_dir: str | Path, name: str, prefix: str) -> Path:
    """Create and return the run directory: ``run_dir`` when given, else ``<out_dir>/<name>``, else
    ``<out_dir>/<prefix>-<YYYYmmdd-HHMMSS>``."""
    path = Path(run_dir) if run_dir else Path(out_dir) / (name or f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (``config.yaml`` in a run directory)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
    return path


def field_docs(cls: type) -> dict[str, str]:
    """Field docstrings of a dataclass: the string literal right after each annotated field."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0]
    docs: dict[str, str] = {}
    stmts = getattr(body, "body", [])
    for stmt, nxt in zip(stmts, stmts[1:], strict=False):
        if (
            isinstance(stmt, ast.AnnAssign)
            and isinstance(stmt.target, ast.Name)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per (nested) field: ``key (type, default): doc``, for ``--help`` epilogues."""
    lines = []
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            lines.extend(describe(tp, key + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required"
        )
        lines.append(f"  {key} ({_type_name(tp)}, default {default!r}): {docs.get(f.name, '')}")
    return lines
