"""A JSON Schema (draft 2020-12) validator for the keywords board.schema.json uses.

We do not use the `jsonschema` package because since 4.18 it pulls in rpds-py, a
Rust extension. A Yocto native build or a Buildroot host build of our tools
would then have to compile Rust (issue 13). The board schema needs only the
keywords listed below. This module checks them with jsonschema's wording and
in its error order. It refuses a schema that uses any other keyword, so the
schema cannot outgrow the validator unseen.

Differs from jsonschema on purpose in one place: an integral float (`16.0`) is
not an "integer" here, because the image tool does arithmetic with these values
and formats them into commands.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import BoardConfigError

DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Data for readers and for board.py's defaults; never a check.
ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "default"})
ASSERTIONS = frozenset(
    {
        "type",
        "enum",
        "const",
        "pattern",
        "minLength",
        "minimum",
        "maximum",
        "items",
        "minItems",
        "maxItems",
        "properties",
        "required",
        "additionalProperties",
    }
)

_TYPES: dict[str, Callable[[object], bool]] = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One violation. `path` leads to the failing value; for "required" it is the object."""

    path: tuple[str | int, ...]
    keyword: str
    message: str
    missing: str = ""  # "required": the absent property


def schema_errors(instance: object, schema: Mapping[str, object]) -> list[SchemaError]:
    """All violations, sorted by (path, message): the first is the one to report.

    Raises BoardConfigError if the schema uses a keyword this module does not implement.
    """
    _check_schema(schema, "#")
    return sorted(_errors(instance, schema, ()), key=lambda e: (list(e.path), e.message))


def _errors(value: Any, schema: Mapping[str, Any], path: tuple) -> Iterator[SchemaError]:
    def error(keyword: str, message: str) -> SchemaError:
        return SchemaError(path, keyword, message)

    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            names = ", ".join(repr(t) for t in types)
            yield error("type", f"{value!r} is not of type {names}")
    if "enum" in schema and not any(_equal(value, each) for each in schema["enum"]):
        yield error("enum", f"{value!r} is not one of {schema['enum']!r}")
    if "const" in schema and not _equal(value, schema["const"]):
        yield error("const", f"{schema['const']!r} was expected")

    # Each remaining keyword applies to one kind of value and ignores the rest,
    # as in JSON Schema: {"type": ["string", "null"], "pattern": ...} lets null pass.
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            yield error("pattern", f"{value!r} does not match {schema['pattern']!r}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield error("minLength", f"{value!r} {_too_few(schema['minLength'])}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            yield error("minimum", f"{value!r} is less than the minimum of {schema['minimum']!r}")
        if "maximum" in schema and value > schema["maximum"]:
            yield error(
                "maximum", f"{value!r} is greater than the maximum of {schema['maximum']!r}"
            )
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            yield error("minItems", f"{value!r} {_too_few(schema['minItems'])}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            too_many = "is expected to be empty" if schema["maxItems"] == 0 else "is too long"
            yield error("maxItems", f"{value!r} {too_many}")
        if "items" in schema:
            for index, item in enumerate(value):
                yield from _errors(item, schema["items"], (*path, index))
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                yield SchemaError(path, "required", f"{name!r} is a required property", name)
        properties = schema.get("properties", {})
        for name, sub in properties.items():
            if name in value:
                yield from _errors(value[name], sub, (*path, name))
        extra = sorted((k for k in value if k not in properties), key=str)
        more = schema.get("additionalProperties", True)
        if more is False and extra:
            names = ", ".join(repr(k) for k in extra)
            verb = "was" if len(extra) == 1 else "were"
            yield error(
                "additionalProperties",
                f"Additional properties are not allowed ({names} {verb} unexpected)",
            )
        elif isinstance(more, dict):
            for name in extra:
                yield from _errors(value[name], more, (*path, name))


def _too_few(minimum: int) -> str:
    return "should be non-empty" if minimum == 1 else "is too short"


def _equal(a: object, b: object) -> bool:
    """JSON equality: true is not 1, and 1 is 1.0 (as jsonschema's `equal`)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_equal, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def _is_count(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_regex(v: object) -> bool:
    try:
        re.compile(v)  # type: ignore[arg-type]
    except (re.error, TypeError):
        return False
    return True


# What each assertion's own value must look like; subschemas are walked below.
_SHAPES: dict[str, Callable[[Any], bool]] = {
    "type": lambda v: all(t in _TYPES for t in (v if isinstance(v, list) else [v])),
    "enum": lambda v: isinstance(v, list),
    "const": lambda v: True,
    "pattern": _is_regex,
    "minLength": _is_count,
    "minimum": _TYPES["number"],
    "maximum": _TYPES["number"],
    "items": lambda v: isinstance(v, dict),
    "minItems": _is_count,
    "maxItems": _is_count,
    "properties": lambda v: isinstance(v, dict) and all(isinstance(s, dict) for s in v.values()),
    "required": lambda v: isinstance(v, list) and all(isinstance(n, str) for n in v),
    "additionalProperties": lambda v: isinstance(v, bool | dict),
}


def _check_schema(schema: Mapping[str, Any], where: str) -> None:
    if not isinstance(schema, Mapping):
        raise BoardConfigError(f"schema {where}: a schema must be an object")
    for key, value in schema.items():
        if key not in ASSERTIONS and key not in ANNOTATIONS:
            raise BoardConfigError(
                f"schema {where}: keyword {key!r} is not supported by image/schema.py;"
                " implement it there first"
            )
        if key in ASSERTIONS and not _SHAPES[key](value):
            shown = repr(value) if len(repr(value)) <= 60 else type(value).__name__
            raise BoardConfigError(f"schema {where}/{key}: malformed value {shown}")
    if schema.get("$schema", DRAFT) != DRAFT:
        raise BoardConfigError(f"schema {where}: only {DRAFT} is supported")
    for name, sub in schema.get("properties", {}).items():
        _check_schema(sub, f"{where}/properties/{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            _check_schema(schema[key], f"{where}/{key}")
