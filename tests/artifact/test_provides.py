"""Depends check and provides after commit, with mender 3.4's rules (mender-compat.md §1.9)."""

from __future__ import annotations

import io

import pytest
from artifact_helpers import Parts

from pyupdate_artifact.errors import CompatibilityError, FormatError
from pyupdate_artifact.provides import check_depends, provides_after_commit
from pyupdate_artifact.reader import read_artifact


def _header(type_info: dict, *, group: str | None = None, depends: dict | None = None):
    parts = Parts(type_info={"type": "rootfs-image", **type_info})
    if group:
        parts.header_info["artifact_provides"]["artifact_group"] = group
    parts.header_info["artifact_depends"].update(depends or {})
    return read_artifact(io.BytesIO(parts.build()))


OLD = {
    "artifact_name": "release-0",
    "artifact_group": "stable",
    "rootfs-image.version": "release-0",
    "rootfs-image.checksum": "aaa",
    "app.version": "1",
    "foo.bar": "x",
}


def test_depends_device_type_must_match():
    header = _header({})
    check_depends(header, "qemux86-64", {})
    with pytest.raises(
        CompatibilityError, match=r"for device types \[qemux86-64\], this device is rpi4"
    ):
        check_depends(header, "rpi4", {})


def test_unknown_device_type_skips_the_device_check():
    check_depends(_header({}), None, {})


def test_depends_artifact_name_is_a_list_of_alternatives():
    header = _header({}, depends={"artifact_name": ["release-0", "release-0b"]})
    check_depends(header, "qemux86-64", {"artifact_name": "release-0b"})
    with pytest.raises(
        CompatibilityError,
        match=r"depends on artifact_name in \['release-0', 'release-0b'\], device has 'release-9'",
    ):
        check_depends(header, "qemux86-64", {"artifact_name": "release-9"})


def test_depends_group_and_type_info_keys_must_be_provided():
    header = _header(
        {"artifact_depends": {"app.version": "1", "board.rev": ["a", "b"]}},
        depends={"artifact_group": ["stable"]},
    )
    check_depends(
        header, "qemux86-64", {"artifact_group": "stable", "app.version": "1", "board.rev": "b"}
    )
    with pytest.raises(CompatibilityError, match=r"depends on board.rev in"):
        check_depends(
            header, "qemux86-64", {"artifact_group": "stable", "app.version": "1", "board.rev": "c"}
        )
    with pytest.raises(CompatibilityError, match=r"device has None"):
        check_depends(header, "qemux86-64", {"artifact_group": "stable", "app.version": "1"})


def test_commit_without_clears_key_replaces_all_provides():
    header = _header({"artifact_provides": {"rootfs-image.version": "release-1"}})
    assert provides_after_commit(OLD, header) == {
        "artifact_name": "release-1",
        "rootfs-image.version": "release-1",
    }


def test_commit_with_clears_drops_matching_keys_keeps_the_rest_and_overrides():
    header = _header(
        {
            "artifact_provides": {"rootfs-image.version": "release-1", "app.version": "2"},
            "clears_artifact_provides": ["rootfs-image.*", "foo.*"],
        }
    )
    assert provides_after_commit(OLD, header) == {
        "artifact_name": "release-1",
        "artifact_group": "stable",  # not matched by any pattern: kept
        "app.version": "2",
        "rootfs-image.version": "release-1",
    }


def test_commit_removes_the_group_when_a_pattern_matches_it():
    header = _header({"clears_artifact_provides": ["artifact_group", "rootfs-image.*"]})
    result = provides_after_commit(OLD, header)
    assert "artifact_group" not in result
    assert result == {"artifact_name": "release-1", "app.version": "1", "foo.bar": "x"}


def test_commit_sets_the_new_group():
    header = _header({"clears_artifact_provides": []}, group="beta")
    assert provides_after_commit(OLD, header)["artifact_group"] == "beta"


def test_empty_clears_list_keeps_everything():
    header = _header({"clears_artifact_provides": []})
    result = provides_after_commit(OLD, header)
    assert result == OLD | {"artifact_name": "release-1"}


def test_wildcard_is_any_run_and_everything_else_is_literal():
    old = {"a.b": "1", "aXb": "2", "a.b.c": "3", "x.a.b": "4"}
    header = _header({"clears_artifact_provides": ["a.b", "*.c"]})
    assert provides_after_commit(old, header) == {
        "aXb": "2",
        "x.a.b": "4",
        "artifact_name": "release-1",
    }


def test_conflicting_provides_keys_across_header_and_type_info_are_refused():
    parts = Parts(type_info={"type": "rootfs-image", "artifact_provides": {"artifact_name": "x"}})
    with pytest.raises(FormatError, match=r"conflicting provides key artifact_name"):
        read_artifact(io.BytesIO(parts.build()))
    parts = Parts(type_info={"type": "x", "artifact_depends": {"device_type": "d"}})
    with pytest.raises(FormatError, match=r"conflicting depends key device_type"):
        read_artifact(io.BytesIO(parts.build()))
