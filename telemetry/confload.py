"""Typed config loading: plain dataclasses in, exact errors that name the key's path out.

Every config class is a dataclass whose fields have defaults. ``load(cls, data)`` checks each key
against the fields (an unknown key is an error), each value against the field's type (a mistyped value
is an error), and collects every error rather than stopping at the first, so ``check-config`` can list
them all. ``MESHSCOPE_A__B__C=value`` overrides the key ``a.b.c`` (the value read as a YAML scalar).
"""

from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

T = TypeVar("T")

ENV_PREFIX = "MESHSCOPE_"


class ConfigError(ValueError):
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


def load(cls: type[T], data: Any, path: str = "") -> T:
    errors: list[str] = []
    value = _convert(cls, data if data is not None else {}, path, errors)
    if errors:
        raise ConfigError(errors)
    return value


def load_file(cls: type[T], filename: str, environ: Mapping[str, str] | None = None) -> T:
    try:
        with open(filename, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise ConfigError([f"{filename}: cannot read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}: not valid YAML: {exc}"]) from exc
    return load_mapping(cls, data, environ)


def load_mapping(cls: type[T], data: Any, environ: Mapping[str, str] | None = None) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping, got {_type_name(data)}"])
    sources = apply_env(data, os.environ if environ is None else environ)
    try:
        return load(cls, data)
    except ConfigError as error:
        # Name the variable an overridden key came from: the file may not even mention it.
        raise ConfigError(
            [
                f"{message} (from {sources[key]})" if (key := message.partition(":")[0]) in sources else message
                for message in error.errors
            ]
        ) from None


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Apply MESHSCOPE_* overrides to ``data``; returns each overridden key path's variable name."""
    sources: dict[str, str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        node = data
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            node[keys[-1]] = raw
        sources[".".join(keys)] = name
    return sources


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _convert(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    where = path or "(top level)"
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, path, errors)
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        inner = [option for option in options if option is not type(None)]
        if len(inner) == 1:
            return _convert(inner[0], value, path, errors)
        for option in inner:
            trial: list[str] = []
            result = _convert(option, value, path, trial)
            if not trial:
                return result
        errors.append(f"{where}: expected one of {', '.join(_describe(o) for o in inner)}, got {_type_name(value)}")
        return None
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            errors.append(f"{where}: must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
        return value
    if origin is list:
        (item_type,) = get_args(tp)
        if not isinstance(value, list):
            errors.append(f"{where}: expected a list, got {_type_name(value)}")
            return []
        return [_convert(item_type, item, f"{path}[{index}]", errors) for index, item in enumerate(value)]
    if origin is dict:
        key_type, item_type = get_args(tp)
        if not isinstance(value, dict):
            errors.append(f"{where}: expected a mapping, got {_type_name(value)}")
            return {}
        return {str(k): _convert(item_type, v, _join(path, str(k)), errors) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            errors.append(f"{where}: expected a boolean, got {_type_name(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{where}: expected an integer, got {_type_name(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append(f"{where}: expected a number, got {_type_name(value)}")
            return value
        if not math.isfinite(value):
            errors.append(f"{where}: expected a finite number, got {value}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            errors.append(f"{where}: expected a string, got {_type_name(value)}")
        return value
    if tp is Any:
        return value
    raise TypeError(f"config type {tp!r} at {where} is not supported")


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _convert_dataclass(cls: Any, value: Any, path: str, errors: list[str]) -> Any:
    where = path or "(top level)"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping, got {_type_name(value)}")
        return cls()
    hints = get_type_hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    kwargs: dict[str, Any] = {}
    before = len(errors)
    for key, item in value.items():
        key_path = _join(path, str(key))
        if key not in fields:
            known = ", ".join(sorted(fields))
            errors.append(f"{key_path}: unknown key (known keys here: {known})")
            continue
        kwargs[key] = _convert(hints[key], item, key_path, errors)
    if len(errors) > before:
        # Validation would only repeat what is wrong, on values of the wrong type.
        return cls()
    try:
        instance = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        errors.append(f"{where}: {exc}")
        return cls()
    validate = getattr(instance, "validate", None)
    if callable(validate):
        for message in validate():
            errors.append(f"{_join(path, message)}" if ":" in message else f"{where}: {message}")
    return instance
