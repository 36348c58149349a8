"""image/schema.py: each keyword board.schema.json uses, unknown keywords refused, parity with jsonschema."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from importlib import resources

import pytest

from pyupdate_host.image import board
from pyupdate_host.image.board import load_board, shipped_boards, validate
from pyupdate_host.image.errors import BoardConfigError
from pyupdate_host.image.schema import schema_errors


def _first(instance: object, schema: dict) -> tuple[str, str, str]:
    errors = schema_errors(instance, schema)
    assert errors, f"{instance!r} passed {schema!r}"
    err = errors[0]
    return ".".join(str(p) for p in err.path), err.keyword, err.message


def _passes(instance: object, schema: dict) -> bool:
    return not schema_errors(instance, schema)


# -- each keyword -------------------------------------------------------------


def test_type_names_the_expected_type():
    assert _first("big", {"type": "integer"}) == ("", "type", "'big' is not of type 'integer'")


def test_bool_is_not_an_integer_nor_a_number():
    assert _first(True, {"type": "integer"})[2] == "True is not of type 'integer'"
    assert not _passes(False, {"type": "number"})


def test_int_is_a_number_and_integral_float_is_not_an_integer():
    assert _passes(3, {"type": "number"})
    assert _passes(2.5, {"type": "number"})
    # the one deliberate difference from jsonschema: sizes must be real ints
    assert _first(16.0, {"type": "integer"})[2] == "16.0 is not of type 'integer'"


def test_type_list_allows_null():
    schema = {"type": ["string", "null"]}
    assert _passes(None, schema) and _passes("x", schema)
    assert _first(5, schema)[2] == "5 is not of type 'string', 'null'"


def test_null_alone_is_a_type():
    assert _passes(None, {"type": "null"})
    assert not _passes(0, {"type": "null"})


def test_enum_lists_the_choices_and_keeps_true_apart_from_1():
    schema = {"enum": ["virtio", "ide", 1]}
    assert _first("sata", schema)[2] == "'sata' is not one of ['virtio', 'ide', 1]"
    assert not _passes(True, schema)


def test_const_says_what_was_expected():
    assert _passes(1, {"const": 1})
    assert _first(2, {"const": 1}) == ("", "const", "1 was expected")
    assert not _passes(True, {"const": 1})


def test_pattern_is_searched_and_skips_non_strings():
    schema = {"type": ["string", "null"], "pattern": "^0x[0-9a-f]+$"}
    assert _passes("0x10", schema) and _passes(None, schema)
    assert _first("16", schema)[2] == "'16' does not match '^0x[0-9a-f]+$'"
    assert _passes("a/dev/x", {"pattern": "/dev/"})  # search, not match


def test_min_length():
    assert _first("", {"minLength": 1})[2] == "'' should be non-empty"
    assert _first("ab", {"minLength": 3})[2] == "'ab' is too short"
    assert _passes(5, {"minLength": 3})


def test_minimum_and_maximum_are_inclusive():
    schema = {"type": "integer", "minimum": 1, "maximum": 8}
    assert _passes(1, schema) and _passes(8, schema)
    assert _first(0, schema)[2] == "0 is less than the minimum of 1"
    assert _first(9, schema)[2] == "9 is greater than the maximum of 8"
    assert _passes("9", {"maximum": 8})


def test_items_checks_each_element_and_names_its_index():
    schema = {"type": "object", "properties": {"files": {"items": {"type": "string"}}}}
    assert _first({"files": ["a", 2]}, schema) == ("files.1", "type", "2 is not of type 'string'")


def test_min_items_and_max_items():
    schema = {"minItems": 2, "maxItems": 2}
    assert _first(["a"], schema)[2] == "['a'] is too short"
    assert _first(["a", "b", "c"], schema)[2] == "['a', 'b', 'c'] is too long"
    assert _first([], {"minItems": 1})[2] == "[] should be non-empty"
    assert _passes(["a", "b"], schema)


def test_required_names_the_missing_property_on_its_object():
    schema = {"properties": {"qemu": {"type": "object", "required": ["binary"]}}}
    err = schema_errors({"qemu": {}}, schema)[0]
    assert (err.path, err.keyword, err.missing) == (("qemu",), "required", "binary")
    assert err.message == "'binary' is a required property"


def test_additional_properties_false_lists_the_extras_sorted():
    schema = {"properties": {"a": {}}, "additionalProperties": False}
    assert _first({"a": 1, "z": 2, "b": 3}, schema) == (
        "",
        "additionalProperties",
        "Additional properties are not allowed ('b', 'z' were unexpected)",
    )
    assert _first({"z": 2}, schema)[2].endswith("('z' was unexpected)")


def test_additional_properties_schema_checks_each_extra():
    schema = {"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}
    assert _passes({"a": "x", "b": 1}, schema)
    assert _first({"b": "x"}, schema) == ("b", "type", "'x' is not of type 'integer'")


def test_annotations_are_not_checks():
    schema = {
        "$comment": "c",
        "title": "t",
        "description": "d",
        "properties": {"x": {"type": "integer", "default": "not an integer"}},
    }
    assert _passes({}, schema)


def test_first_error_is_the_smallest_path_then_message():
    schema = {
        "type": "object",
        "required": ["b"],
        "properties": {"a": {"type": "string", "minLength": 5, "pattern": "^x"}},
    }
    # the object's own error (path "") comes before its members'
    assert _first({"a": "yy"}, schema)[1] == "required"
    errors = schema_errors({"a": "yy", "b": 0}, schema)
    assert [e.message for e in errors] == ["'yy' does not match '^x'", "'yy' is too short"]


# -- the schema itself --------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "where"),
    [
        ({"uniqueItems": True}, "#"),
        (
            {"properties": {"env": {"properties": {"files": {"items": {"format": "x"}}}}}},
            "#/properties/env/properties/files/items",
        ),
        ({"additionalProperties": {"$ref": "#/x"}}, "#/additionalProperties"),
        ({"if": {}, "then": {}}, "#"),
    ],
)
def test_unknown_keyword_is_refused_with_one_line(schema, where):
    with pytest.raises(BoardConfigError, match=r"is not supported by image/schema\.py") as exc:
        schema_errors({}, schema)
    assert str(exc.value).startswith(f"schema {where}: keyword ")
    assert "\n" not in str(exc.value)


def test_unknown_keyword_is_refused_even_where_the_instance_never_goes():
    schema = {"properties": {"never": {"type": "string", "maxLength": 3}}}
    with pytest.raises(BoardConfigError, match="'maxLength'"):
        schema_errors({}, schema)


def test_property_names_are_not_keywords():
    assert _passes({"$comment": "x"}, {"properties": {"$comment": {"type": "string"}}})


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strnig"},
        {"type": ["string", "nil"]},
        {"pattern": "("},
        {"minItems": -1},
        {"minimum": True},
        {"required": "name"},
        {"items": [{"type": "string"}]},
        {"$schema": "http://json-schema.org/draft-07/schema#"},
    ],
)
def test_malformed_keyword_value_is_refused(schema):
    with pytest.raises(BoardConfigError, match=r"^schema #"):
        schema_errors({}, schema)


def test_board_loading_refuses_a_schema_that_outgrew_the_validator(monkeypatch):
    grown = board._schema()
    grown["properties"]["name"]["maxLength"] = 64
    monkeypatch.setattr(board, "_schema", lambda: grown)
    with pytest.raises(BoardConfigError, match=r"#/properties/name: keyword 'maxLength'"):
        load_board("qemu-x86_64")


@pytest.mark.parametrize("name", shipped_boards())
def test_shipped_schema_uses_only_known_keywords_and_shipped_boards_pass(name):
    assert schema_errors(_board(name), board._schema()) == []


def test_top_level_that_is_not_an_object_is_named():
    with pytest.raises(
        BoardConfigError, match=r"^b\.json: \(top level\): \[\] is not of type 'object'$"
    ):
        validate([], "b.json")


def test_bool_for_an_integer_field_is_refused():
    raw = _board("qemu-x86_64")
    raw["uboot"]["bootlimit"] = True
    with pytest.raises(BoardConfigError, match=r"uboot\.bootlimit: True is not of type 'integer'"):
        validate(raw, "b.json")


# -- parity with jsonschema ---------------------------------------------------


def _jsonschema():
    try:
        import jsonschema
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("jsonschema: not installed (requirements-dev.txt has it)")
        pytest.skip("jsonschema not installed: no parity check")
    return jsonschema


def _board(name: str) -> dict:
    path = resources.files("pyupdate_host.image").joinpath("boards", f"{name}.json")
    return json.loads(path.read_text())


# Integral floats are left out: there we refuse on purpose (see schema.py).
_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1,
    9,
    2.5,
    "",
    "x",
    "0x1F",
    "0xZZ",
    "/dev/x",
    "/",
    "a b",
    [],
    ["a"],
    ["a.env", "b"],
    ["0x1", "0x2", "0x3"],
    {},
    {"k": 1},
]


def _paths(node: object, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _at(node: object, path: tuple) -> object:
    for key in path:
        node = node[key]  # type: ignore[index]
    return node


def _changed(raw: dict, path: tuple, value: object = None, *, delete: bool = False) -> object:
    if not path:
        return value
    out = copy.deepcopy(raw)
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return out


def _mutations(raw: dict) -> Iterator[object]:
    """The board itself, every value in it replaced or deleted, and unknown or defaulted members set."""
    yield raw
    for path in _paths(raw):
        for value in _VALUES:
            yield _changed(raw, path, value)
        if path and isinstance(path[-1], str):
            yield _changed(raw, path, delete=True)
        if isinstance(_at(raw, path), dict):
            yield _changed(raw, (*path, "zz_unknown"), 1)
    for name, sub in board._schema()["properties"].items():
        for member in sub.get("properties", {}):
            for value in _VALUES:
                yield (
                    _changed(raw, (name, member), value)
                    if name in raw
                    else {**raw, name: {member: value}}
                )
    yield {**raw, "data": {"mount_point": "/data", "label": "data", "extra": 1, "more": 2}}


@pytest.mark.parametrize("name", shipped_boards())
def test_same_verdicts_paths_and_messages_as_jsonschema(name):
    jsonschema = _jsonschema()
    schema = board._schema()
    reference = jsonschema.Draft202012Validator(schema)
    cases = list(_mutations(_board(name)))
    assert len(cases) > 500
    failing = 0
    for instance in cases:
        theirs = sorted(
            ((list(e.absolute_path), e.message) for e in reference.iter_errors(instance)),
        )
        ours = [(list(e.path), e.message) for e in schema_errors(instance, schema)]
        assert ours == theirs, json.dumps(instance)
        failing += bool(ours)
    assert 0 < failing < len(cases)
