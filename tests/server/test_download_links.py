"""Signed download links through the real route: bad signatures are 4xx, HEAD works,
any artifact name gives a valid Content-Disposition, and a rotation keeps links valid."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from fastapi.testclient import TestClient
from server_helpers import accept, make_device, upload

from pyupdate_server.app import create_app
from pyupdate_testing.artifacts import write_test_artifact

ARTIFACTS = "/api/management/v1/deployments/artifacts"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
NEXT = "/api/devices/v2/deployments/device/deployments/next"


def _stored(client, admin, tmp_path, name="links-1"):  # type: ignore[no-untyped-def]
    assert (
        upload(client, admin, write_test_artifact(tmp_path / "a.mender", name)).status_code == 201
    )
    artifact = next(a for a in client.get(ARTIFACTS, headers=admin).json() if a["name"] == name)
    link = client.get(f"{ARTIFACTS}/{artifact['id']}/download", headers=admin).json()
    return artifact, link["uri"]


@pytest.mark.parametrize("signature", ["é", "%C3%A9" * 32, "€" * 64, "%00", "%FF"])
def test_non_ascii_signature_is_403(client, admin, tmp_path, signature):
    _, uri = _stored(client, admin, tmp_path)
    base = uri.split("x-men-signature=")[0]
    r = client.get(f"{base}x-men-signature={signature}")
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "download link signature is invalid"


def test_non_ascii_expiry_is_403(client, admin, tmp_path):
    _, uri = _stored(client, admin, tmp_path)
    r = client.get(uri.replace("x-men-expire=", "x-men-expire=%D9%A1"))
    assert r.status_code == 403


def test_head_on_a_real_signed_link_has_the_length_and_no_body(client, admin, tmp_path):
    artifact, uri = _stored(client, admin, tmp_path)
    r = client.head(uri)
    assert r.status_code == 200, r.text
    assert r.headers["content-length"] == str(artifact["size"])
    assert r.headers["accept-ranges"] == "bytes"
    assert r.content == b""
    assert client.head(uri.replace("x-men-signature=", "x-men-signature=0")).status_code == 403


@pytest.mark.parametrize("name", ["ünïcødé-€-名前", 'quo"te\\back', "plain-ascii"])
def test_any_artifact_name_deploys_and_downloads(client, admin, tmp_path, name):
    device = make_device(client, "names")
    accept(client, admin, device)
    _stored(client, admin, tmp_path, name)
    r = client.post(DEPLOYMENTS, json={"name": "d", "artifact_name": name, "all_devices": True},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201, r.text
    next_ = client.post(NEXT, json={"device_provides": {"device_type": "qemux86-64",
                        "artifact_name": "old"}}, headers=device.headers)  # fmt: skip
    assert next_.status_code == 200
    r = client.get(next_.json()["artifact"]["source"]["uri"])
    assert r.status_code == 200
    disposition = r.headers["content-disposition"]
    disposition.encode("latin-1")  # a header the client can read at all
    assert "\r" not in disposition and "\n" not in disposition
    fallback = disposition.split('filename="')[1].split('"')[0]
    assert '"' not in fallback and "\\" not in fallback
    if fallback != f"{name}.mender":
        assert unquote(disposition.split("filename*=UTF-8''")[1]) == f"{name}.mender"
    else:
        assert "filename*" not in disposition
    assert quote(name, safe="") or True


def test_artifact_name_with_a_line_break_is_refused_at_upload(client, admin, tmp_path):
    try:
        path = write_test_artifact(tmp_path / "crlf.mender", "bad\r\nname")
    except Exception as exc:  # the writer may refuse it first: then nothing reaches us
        pytest.skip(f"the writer refuses the name: {exc}")
    r = upload(client, admin, path)
    assert r.status_code == 400, r.text
    assert "control characters" in r.json()["error"]
    assert client.get(ARTIFACTS, headers=admin).json() == []


def test_links_signed_before_a_rotation_still_work_with_the_old_key_listed(settings, tmp_path):
    with TestClient(create_app(settings)) as client:
        from server_helpers import ADMIN

        from pyupdate_server.services.users import create_user

        with client.app.state.server.db.write() as session:
            create_user(session, *ADMIN)
        token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
        admin = {"Authorization": f"Bearer {token}"}
        _, uri = _stored(client, admin, tmp_path)
    new_key = "n" * 40
    rotated = settings.replace(secret_key=new_key, previous_secret_keys=(settings.secret_key,))
    with TestClient(create_app(rotated)) as client:
        assert client.get(uri).status_code == 200
        assert client.get(ARTIFACTS, headers=admin).status_code == 200
    with TestClient(create_app(settings.replace(secret_key=new_key))) as client:
        assert client.get(uri).status_code == 403
        assert client.get(ARTIFACTS, headers=admin).status_code == 401


def test_artifact_name_over_256_characters_is_refused_at_upload(client, admin, tmp_path):
    r = upload(client, admin, write_test_artifact(tmp_path / "long.mender", "n" * 257))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "artifact rejected: name over 256 characters"
