"""header-info, type-info, meta-data (mender-compat.md §1.5): strict keys, Go-identical JSON."""

from __future__ import annotations

import pytest
from artifact_helpers import HEADER_INFO_1_10, HELLO_SHA, TYPE_INFO_1_10

from pyupdate_artifact.errors import FormatError
from pyupdate_artifact.format.gojson import go_json
from pyupdate_artifact.format.header import (
    HeaderInfo,
    TypeInfo,
    parse_header_info,
    parse_meta_data,
    parse_type_info,
)

ROOTFS_CLEARS = ("artifact_group", "rootfs_image_checksum", "rootfs-image.*")


# --- Go-identical bytes (the examples of §1.10) ------------------------------------
def test_header_info_bytes_match_mender_artifacts_rootfs_example():
    info = HeaderInfo(("rootfs-image",), "release-1", device_types=("qemux86-64",))
    assert info.to_json() == HEADER_INFO_1_10
    assert len(info.to_json()) == 138


def test_type_info_bytes_match_mender_artifacts_rootfs_example():
    # mender-artifact 3.9 writes "type":"" for rootfs-image; with the same type the bytes agree.
    provides = {"rootfs-image.version": "release-1", "rootfs-image.checksum": HELLO_SHA}
    type_info = TypeInfo("", provides, {}, ROOTFS_CLEARS)
    assert type_info.to_json() == TYPE_INFO_1_10
    assert len(type_info.to_json()) == 246


def test_header_info_bytes_match_mender_artifacts_module_example():
    info = HeaderInfo(
        ("single-file",),
        "app-1.0",
        artifact_group="grp1",
        device_types=("devA", "devB"),
        depends_names=("release-0",),
        depends_groups=("grp0",),
    )
    assert info.to_json() == (
        b'{"payloads":[{"type":"single-file"}],"artifact_provides":{"artifact_name":"app-1.0",'
        b'"artifact_group":"grp1"},"artifact_depends":{"artifact_name":["release-0"],'
        b'"device_type":["devA","devB"],"artifact_group":["grp0"]}}'
    )


def test_type_info_bytes_match_mender_artifacts_module_example():
    type_info = TypeInfo(
        "single-file",
        {"rootfs-image.single-file.version": "app-1.0", "custom.key": "val"},
        {"dep.key": "dval"},
        ("foo.*", "rootfs-image.single-file.*"),
    )
    assert type_info.to_json() == (
        b'{"type":"single-file","artifact_depends":{"dep.key":"dval"},'
        b'"artifact_provides":{"custom.key":"val","rootfs-image.single-file.version":"app-1.0"},'
        b'"clears_artifact_provides":["foo.*","rootfs-image.single-file.*"]}'
    )


def test_bootstrap_header_bytes_match_mender_artifact():
    info = HeaderInfo((None,), "boot-1", device_types=("qemux86-64",))
    assert info.to_json() == (
        b'{"payloads":[{"type":null}],"artifact_provides":{"artifact_name":"boot-1"},'
        b'"artifact_depends":{"device_type":["qemux86-64"]}}'
    )
    assert TypeInfo(None).to_json() == b'{"type":null}'


def test_meta_data_is_compact_with_sorted_keys_like_go():
    doc = {"n": 3, "list": ["x", 1], "dest_dir": "/opt/app"}
    assert go_json(doc, sort_keys=True) == b'{"dest_dir":"/opt/app","list":["x",1],"n":3}'


def test_go_json_escapes_html_characters_like_go():
    assert go_json({"a": "<b>&\u2028\u2029é"}) == (
        b'{"a":"\\u003cb\\u003e\\u0026\\u2028\\u2029' + "é".encode() + b'"}'
    )


def test_header_info_round_trips():
    info = HeaderInfo(("x",), "n", "g", ("d1", "d2"), ("n0",), ("g0",))
    assert parse_header_info(info.to_json()) == info


# --- strict parsing -------------------------------------------------------------
GOOD_INFO = {
    "payloads": [{"type": "rootfs-image"}],
    "artifact_provides": {"artifact_name": "a"},
    "artifact_depends": {"device_type": ["d"]},
}


def _with(**changes) -> bytes:
    import json

    doc = json.loads(json.dumps(GOOD_INFO))
    for path, value in changes.items():
        target = doc
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_with(extra_field=1), "unknown field 'extra_field'"),
        (_with(artifact_provides__x=1), "unknown field 'x'"),
        (_with(artifact_depends__x=[]), "unknown field 'x'"),
        (_with(payloads=[{"type": "x", "files": []}]), "only 'type'"),
        (_with(payloads=[]), "non-empty list"),
        (_with(payloads=KeyError), "non-empty list"),
        (_with(payloads=[{"type": ""}]), "non-empty string or null"),
        (_with(payloads=[{"type": 3}]), "non-empty string or null"),
        (_with(artifact_provides=KeyError), "artifact_provides is missing"),
        (_with(artifact_provides__artifact_name=""), "artifact_name is missing or empty"),
        (_with(artifact_provides__artifact_name=KeyError), "artifact_name is missing or empty"),
        (_with(artifact_provides__artifact_group=["g"]), "artifact_group must be a string"),
        (_with(artifact_depends=KeyError), "artifact_depends is missing"),
        (_with(artifact_depends__device_type=KeyError), "device_type is required"),
        (_with(artifact_depends__device_type=[]), "must not be empty"),
        (_with(artifact_depends__device_type="d"), "expected a list of strings"),
        (_with(artifact_depends__artifact_name=[1]), "expected a list of strings"),
        (b"{", "invalid JSON"),
        (b"[]", "expected a JSON object"),
        (b"", "invalid JSON"),
    ],
)
def test_parse_header_info_refuses(data: bytes, message: str):
    with pytest.raises(FormatError, match=r"^header-info: ") as err:
        parse_header_info(data)
    assert message in str(err.value)


def test_parse_header_info_accepts_indented_json():
    info = parse_header_info(
        b'{\n "payloads": [{"type": null}],\n "artifact_provides": '
        b'{"artifact_name": "b"},\n "artifact_depends": {"device_type": ["d"]}}'
    )
    assert info.payload_types == (None,)


@pytest.mark.parametrize("kind", ["", "rootfs-image", None])
def test_parse_type_info_accepts_every_rootfs_type_mender_writes(kind):
    assert parse_type_info(go_json({"type": kind}), "t").type == kind


def test_parse_type_info_reads_depends_lists_and_clears():
    info = parse_type_info(TYPE_INFO_1_10, "headers/0000/type-info")
    assert info.provides["rootfs-image.checksum"] == HELLO_SHA
    assert info.clears_provides == ROOTFS_CLEARS
    info = parse_type_info(b'{"type":"x","artifact_depends":{"a":"1","b":["2","3"]}}', "t")
    assert info.depends == {"a": "1", "b": ["2", "3"]}
    assert info.clears_provides is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"type":"x","files":[]}', "unknown field 'files'"),
        (b'{"type":1}', "type must be a string or null"),
        (b'{"type":"x","artifact_provides":{"k":1}}', "map strings to strings"),
        (b'{"type":"x","artifact_provides":{"k":["v"]}}', "map strings to strings"),
        (b'{"type":"x","artifact_provides":["k"]}', "map strings to strings"),
        (b'{"type":"x","artifact_depends":["k"]}', "must be an object"),
        (b'{"type":"x","artifact_depends":{"k":3}}', "expected a list of strings"),
        (b'{"type":"x","clears_artifact_provides":"a*"}', "expected a list of strings"),
        (b'{"type":"x"', "invalid JSON"),
    ],
)
def test_parse_type_info_refuses(data: bytes, message: str):
    with pytest.raises(FormatError, match=r"^headers/0000/type-info") as err:
        parse_type_info(data, "headers/0000/type-info")
    assert message in str(err.value)


def test_parse_meta_data_empty_file_is_none_and_object_is_kept():
    assert parse_meta_data(b"", "m") is None
    assert parse_meta_data(b'{"a":[1,"x"]}', "m") == {"a": [1, "x"]}


@pytest.mark.parametrize("data", [b"[1]", b'"x"', b"{", b"3"])
def test_parse_meta_data_refuses_non_objects(data: bytes):
    with pytest.raises(FormatError, match=r"^headers/0000/meta-data: "):
        parse_meta_data(data, "headers/0000/meta-data")
