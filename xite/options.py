"""Component options: the constructor signature is the schema.

Each keyword parameter of a component's constructor is an option: its annotation is the type,
its default the default, and its one-line doc comes from an ``Options:`` section (``Args:`` and
``Parameters:`` are read too) of the class docstring (or ``__init__``'s), one ``name: doc`` line
per option::

    class HNSWRetriever(Retriever):
        \"\"\"Approximate top-k with an HNSW graph.

        Options:
            connectivity: links per node (M); more is slower to build and more exact
            expansion_search: candidates kept while searching (efSearch)
        \"\"\"

        def __init__(self, connectivity: int = 16, expansion_search: int = 64): ...

:func:`describe` returns that schema; :func:`coerce` turns option values that arrive as strings
(``--option retriever.connectivity=32``, a TOML file) into the declared types and rejects unknown
or ill-typed options with a one-line :class:`~xite.errors.ConfigError` naming the component.
Supported annotations: bool, int, float, str, pathlib.Path, Literal[...], X | None, unions of
these, and list/tuple/frozenset of them; anything else (or no annotation) is passed unchanged.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any, Literal, Union

import numpy as np

from xite.errors import ConfigError


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()  # the default of an option that has none


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: str  # the annotation, as users read it: "int", "'keep' | 'remove'", "float | None"
    default: Any  # REQUIRED when the option has no default
    doc: str
    annotation: Any = Any  # the annotation itself, for coerce()


_SECTION = re.compile(r"^(\s*)(Options|Args|Arguments|Parameters|Keyword Args|Keyword Arguments):\s*$")
_ANY_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
_ITEM = re.compile(r"^(\s*)\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_option_docs(doc: str | None) -> dict[str, str]:
    """``{option: doc}`` from the ``Options:`` (or ``Args:``) section of a docstring.

    A line indented deeper than its item continues it; the section ends at the first line that
    is not indented deeper than the section header, or at the next section header ("Returns:").
    """
    if not doc:
        return {}
    # Raw lines, not inspect.cleandoc: a docstring that opens with "Options:" on its first line
    # would otherwise have its items dedented to the header's level.
    lines = doc.expandtabs().splitlines()
    docs: dict[str, str] = {}
    i = 0
    while i < len(lines):
        header = _SECTION.match(lines[i])
        first_line = i == 0
        i += 1
        if not header:
            continue
        header_indent = -1 if first_line else len(header.group(1))
        item_indent = None
        current = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = len(line) - len(line.lstrip())
            if indent <= header_indent or _ANY_SECTION.match(line):
                break
            match = _ITEM.match(line)
            if match and (item_indent is None or indent == item_indent):
                item_indent = indent
                current = match.group(2)
                docs[current] = match.group(3).strip()
            elif current is not None:
                docs[current] = (docs[current] + " " + line.strip()).strip()
            i += 1
    return docs


def type_name(annotation: Any) -> str:
    """An annotation as a short string: ``int | None``, ``'keep' | 'remove'``."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    if annotation is type(None):
        return "None"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]" if inner else getattr(origin, "__name__", str(origin))
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation)


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj)
    except Exception:  # an annotation that does not resolve here: fall back to the raw ones
        return dict(getattr(obj, "__annotations__", {}))


def _schema(factory: Any) -> tuple[list[OptionInfo], bool]:
    """(options, takes_any_keyword) of a component factory."""
    from xite.contracts import component_class

    cls = component_class(factory)
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return [], True
    init = factory.__init__ if inspect.isclass(factory) else factory
    hints = _hints(init)
    docs: dict[str, str] = {}
    # A subclass that inherits its constructor (slerp from linear) inherits its option docs too.
    sources = [init, factory, *(cls.__mro__ if cls is not None else ())]
    for source in sources:
        for key, value in parse_option_docs(getattr(source, "__doc__", None)).items():
            docs.setdefault(key, value)
    infos = []
    takes_any = False
    for param in sig.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            takes_any = True
            continue
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            continue
        annotation = hints.get(param.name, param.annotation)
        if isinstance(annotation, str):  # unresolved: show it, do not coerce
            shown, annotation = annotation, Any
        else:
            shown = type_name(annotation)
        default = REQUIRED if param.default is param.empty else param.default
        infos.append(OptionInfo(param.name, shown, default, docs.get(param.name, ""), annotation))
    return infos, takes_any


def describe(kind: str, name: str) -> list[OptionInfo]:
    """The options of the component ``name`` of ``kind`` ("encoder" or "encoders", ...)."""
    from xite import plugins

    reg, _ = plugins.lookup(kind, name)
    return _schema(reg.factory)[0]


# -- coercion ---------------------------------------------------------------------------------

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null"}
_INT = re.compile(r"[+-]?\d+")


class _Mismatch(Exception):
    """Internal: the value does not fit; the message says what was expected ("an int")."""


def _expected(annotation: Any) -> str:
    if annotation is bool:
        return "true or false"
    if annotation is int:
        return "an int"
    if annotation is float:
        return "a number"
    if annotation is str:
        return "a string"
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "a path"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(_expected(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"a list of {_expected(args[0])}" if args else "a list"
    return f"a {type_name(annotation)}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def _convert(value: Any, annotation: Any) -> Any:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return value
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(value, option)
            except _Mismatch:
                continue
        raise _Mismatch(_expected(annotation))
    if origin is Literal:
        for choice in args:
            if type(value) is type(choice) and value == choice:
                return choice
        if isinstance(value, str):
            for choice in args:
                if str(choice) == value.strip():
                    return choice
        raise _Mismatch(_expected(annotation))
    if annotation is type(None):
        if value is None:
            return None
        raise _Mismatch("none")
    if annotation is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise _Mismatch(_expected(bool))
    if annotation is int:
        # bool is an int subclass in Python, but `=true` for a count is a mistake, not 1.
        if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        raise _Mismatch(_expected(int))
    if annotation is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _Mismatch(_expected(float))
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Mismatch(_expected(str))
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        if isinstance(value, (str, os.PathLike)):
            return annotation(value)
        raise _Mismatch(_expected(annotation))
    if origin in (list, tuple, set, frozenset):
        items = value
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    items = json.loads(text)
                except json.JSONDecodeError:
                    raise _Mismatch(_expected(annotation)) from None
            else:
                items = [part.strip() for part in text.split(",") if part.strip()]
        if not isinstance(items, (list, tuple, set, frozenset)):
            raise _Mismatch(_expected(annotation))
        item_type = args[0] if args else Any
        return origin(_convert(item, item_type) for item in items)
    if isinstance(annotation, type):
        if isinstance(value, annotation):
            return value
        raise _Mismatch(_expected(annotation))
    return value


def coerce(kind: str, name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Options converted to the types the component declares.

    Strings are parsed (``"4"`` -> 4 for an int, ``"true"`` -> True for a bool, ``"none"`` ->
    None where None is allowed); values of the right type pass unchanged; an unknown option or a
    value that does not fit (``True`` for an int: bool is not int here) is a ConfigError.
    """
    from xite import plugins

    plural = plugins.plural_kind(kind)
    reg, _ = plugins.lookup(plural, name)
    infos, takes_any = _schema(reg.factory)
    by_name = {info.name: info for info in infos}
    label = f"{plural[:-1]} '{name}'"
    converted: dict[str, Any] = {}
    for key, value in options.items():
        info = by_name.get(key)
        if info is None:
            if takes_any:
                converted[key] = value
                continue
            accepted = ", ".join(by_name) or "no options"
            raise ConfigError(f"{label} has no option '{key}'; its options: {accepted}")
        try:
            converted[key] = _convert(value, info.annotation)
        except _Mismatch as mismatch:
            raise ConfigError(f"{label}: option {key} must be {mismatch}, got {_shown(value)}") from None
    return converted
