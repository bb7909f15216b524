"""Typed config loading: plain dataclasses in, exact errors that name the key's path out.

Every config class is a dataclass whose fields have defaults. ``load(cls, data)`` checks each key
against the fields (an unknown key is an error), each value against the field's type (a mistyped value
is an error), and collects every error rather than stopping at the first, so ``check-config`` can list
them all. ``MESHSCOPE_A__B__C=value`` overrides the key ``a.b.c`` (the value read as a YAML scalar).

Any value may name environment variables, as the OpenTelemetry Collector's configs do:
``${env:NAME}``, ``${env:NAME:-default}``, and ``$$`` for a literal ``$``. A value that is one whole
reference takes the type of its key (``port: ${env:PORT}`` is an integer); an unset variable without
a default is an error naming the key. References are expanded in the file's values only; a
``MESHSCOPE_*`` override is taken verbatim (``$`` is just a character there), so a password set by one
arrives as written. Error messages never show secrets: values under secret-named keys (token,
password, api_key, headers, ...), every value substituted from a variable, and URLs' user:password are
masked (telemetry/security/redact.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args, get_origin, get_type_hints

import yaml

from telemetry.security.redact import scrub, secret_values

T = TypeVar("T")

ENV_PREFIX = "MESHSCOPE_"
# A config is a few kilobytes; a file far beyond that is a mistake (or hostile) and is not parsed.
MAX_CONFIG_BYTES = 1024 * 1024
_REFERENCE = re.compile(r"\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")


class _FromEnv(str):
    """A value that was one whole ``${env:...}`` reference: typed by its key when converted."""


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
        with open(filename, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{filename}: cannot read: {exc.strerror}"]) from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError([f"{filename}: larger than {MAX_CONFIG_BYTES} bytes: not read"])
    try:
        data = _parse_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{filename}: not UTF-8 text: {exc.reason} at byte {exc.start}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{filename}: not valid YAML: {exc}"]) from exc
    return load_mapping(cls, data, environ)


def load_mapping(cls: type[T], data: Any, environ: Mapping[str, str] | None = None) -> T:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping, got {_type_name(data)}"])
    environ = os.environ if environ is None else environ
    errors: list[str] = []
    substituted: set[str] = set()
    # The file's references first, then the overrides verbatim: a variable's value is never expanded
    # again (as in the OpenTelemetry Collector), so a password holding "$$" or "${" arrives as set.
    data = expand_env(data, environ, "", errors, substituted)
    sources = apply_env(data, environ)
    # A reference the override replaced does not matter any more.
    errors = [message for message in errors if not _overridden(message.partition(":")[0], sources)]
    # What a variable held may be a secret whatever its key is called: masked in every message too.
    secrets = secret_values(data) | substituted
    try:
        if errors:
            raise ConfigError(errors)
        return load(cls, data)
    except ConfigError as error:
        # Name the variable an overridden key came from: the file may not even mention it.
        raise ConfigError(
            [
                scrub(
                    f"{message} (from {sources[key]})" if (key := message.partition(":")[0]) in sources else message,
                    secrets,
                )
                for message in error.errors
            ]
        ) from None


def expand_env(
    value: Any,
    environ: Mapping[str, str],
    path: str = "",
    errors: list[str] | None = None,
    substituted: set[str] | None = None,
) -> Any:
    """``value`` with every ``${env:NAME}`` in its strings replaced; what cannot be is added to ``errors``.

    ``substituted`` collects each variable's value put in (to be masked in messages).
    """
    errors = [] if errors is None else errors
    substituted = set() if substituted is None else substituted
    if isinstance(value, dict):
        return {
            key: expand_env(item, environ, _join(path, str(key)), errors, substituted) for key, item in value.items()
        }
    if isinstance(value, list):
        return [expand_env(item, environ, f"{path}[{index}]", errors, substituted) for index, item in enumerate(value)]
    if not isinstance(value, str) or "$" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if name is None:
            errors.append(
                f"{path or '(top level)'}: {match.group(0)!r} is not a reference: use ${{env:NAME}} "
                "(or $$ for a literal $)"
            )
            return ""
        found = environ.get(name)
        if found is None or (found == "" and default is not None):
            if default is None:
                errors.append(f"{path or '(top level)'}: environment variable {name} is not set (${{env:{name}}})")
                return ""
            found = default
        if found:
            substituted.add(found)
        return found

    expanded = _REFERENCE.sub(replace, value)
    whole = _REFERENCE.fullmatch(value)
    return _FromEnv(expanded) if whole is not None and whole.group(0) != "$$" else expanded


def _overridden(key_path: str, sources: Mapping[str, str]) -> bool:
    return any(key_path == key or key_path.startswith((f"{key}.", f"{key}[")) for key in sources)


def apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Apply MESHSCOPE_* overrides to ``data`` (values read as YAML scalars, ``$`` taken literally);
    returns each overridden key path's variable name."""
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
            node[keys[-1]] = _parse_yaml(raw) if raw != "" else ""
        except yaml.YAMLError:
            node[keys[-1]] = raw
        sources[".".join(keys)] = name
    return sources


def _parse_yaml(text: str) -> Any:
    """``yaml.safe_load``, failing only with yaml.YAMLError.

    PyYAML's constructors raise ValueError, AttributeError or TypeError on tagged scalars they cannot
    read (``2024-13-01``, ``!!timestamp x``, ``!!int x``) and its composer recurses once per nesting
    level (RecursionError): each is text that is not a usable YAML document, as a syntax error is.
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise
    except Exception as exc:
        raise yaml.YAMLError(f"{type(exc).__name__}: {exc}") from exc


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
    if isinstance(value, _FromEnv) and origin not in (typing.Union, types.UnionType):
        # What a variable holds is text; a key of another type reads it as a YAML scalar, as overrides do.
        value = str(value) if tp is str or tp is Any or origin is Literal else _scalar(value)
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


def _scalar(text: str) -> Any:
    try:
        parsed = _parse_yaml(text) if text else ""
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, (str, int, float, bool)) or parsed is None else text


def _describe(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if get_origin(tp) is Literal:
        return " or ".join(repr(value) for value in get_args(tp))
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _placeholder(cls: Any) -> Any:
    # What a section with errors converts to: never used, since load() raises. A class with fields
    # that have no default (a section given in full or not at all) has none.
    try:
        return cls()
    except TypeError:
        return None


def _convert_dataclass(cls: Any, value: Any, path: str, errors: list[str]) -> Any:
    where = path or "(top level)"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.append(f"{where}: expected a mapping, got {_type_name(value)}")
        return _placeholder(cls)
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
        return _placeholder(cls)
    try:
        instance = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        errors.append(f"{where}: {exc}")
        return _placeholder(cls)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        for message in validate():
            errors.append(f"{_join(path, message)}" if ":" in message else f"{where}: {message}")
    return instance
