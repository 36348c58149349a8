"""What an accepted device may store: inventory attributes and values, deployment logs;
and how long a deployment name may be. Over a limit: 413/4xx, one line, nothing stored."""

from __future__ import annotations

from server_helpers import accept, make_device, upload

from pyupdate_server import limits
from pyupdate_testing.artifacts import write_test_artifact

INVENTORY = "/api/devices/v1/inventory/device/attributes"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
NEXT = "/api/devices/v2/deployments/device/deployments/next"
LOG = "/api/devices/v1/deployments/device/deployments/{}/log"


def _device(client, admin, name="limits"):  # type: ignore[no-untyped-def]
    device = make_device(client, name)
    device_id = accept(client, admin, device)
    return device, device_id


def _stored(client, admin, device_id):  # type: ignore[no-untyped-def]
    r = client.get(f"/api/management/v1/inventory/devices/{device_id}", headers=admin)
    return {a["name"]: a["value"] for a in r.json()["attributes"] if a["scope"] == "inventory"}


def test_too_many_inventory_attributes_is_413_and_nothing_stored(client, admin):
    device, device_id = _device(client, admin)
    attrs = [{"name": f"a{i}", "value": "v"} for i in range(limits.MAX_INVENTORY_ATTRS + 1)]
    r = client.put(INVENTORY, json=attrs, headers=device.headers)
    assert r.status_code == 413
    assert r.json()["error"] == f"inventory over {limits.MAX_INVENTORY_ATTRS} attributes"
    assert _stored(client, admin, device_id) == {}


def test_patches_cannot_add_up_past_the_attribute_cap(client, admin):
    device, device_id = _device(client, admin)
    half = limits.MAX_INVENTORY_ATTRS // 2 + 1
    first = [{"name": f"a{i}", "value": "v"} for i in range(half)]
    second = [{"name": f"b{i}", "value": "v"} for i in range(half)]
    assert client.patch(INVENTORY, json=first, headers=device.headers).status_code == 200
    assert client.patch(INVENTORY, json=second, headers=device.headers).status_code == 413
    assert len(_stored(client, admin, device_id)) == half


def test_oversized_inventory_value_is_413(client, admin):
    device, device_id = _device(client, admin)
    for value in ["x" * (limits.MAX_ATTR_VALUE + 1), ["x"] * (limits.MAX_ATTR_ITEMS + 1)]:
        r = client.put(INVENTORY, json=[{"name": "big", "value": value}], headers=device.headers)
        assert r.status_code == 413, r.text
        assert "\n" not in r.json()["error"]
    assert _stored(client, admin, device_id) == {}


def test_inventory_body_over_the_cap_is_413(client, admin):
    device, _ = _device(client, admin)
    body = b'[{"name": "a", "value": "' + b"x" * limits.MAX_INVENTORY_BODY + b'"}]'
    r = client.put(INVENTORY, content=body, headers=device.headers)
    assert r.status_code == 413


def test_inventory_within_the_limits_is_stored(client, admin):
    device, device_id = _device(client, admin)
    attrs = [{"name": "big", "value": "x" * limits.MAX_ATTR_VALUE}, {"name": "l", "value": [1, 2]}]
    assert client.put(INVENTORY, json=attrs, headers=device.headers).status_code == 200
    assert _stored(client, admin, device_id)["l"] == [1, 2]


def _deployment_for(client, admin, device, tmp_path):  # type: ignore[no-untyped-def]
    assert (
        upload(client, admin, write_test_artifact(tmp_path / "a.mender", "lim-1")).status_code
        == 201
    )
    r = client.post(DEPLOYMENTS, json={"name": "d", "artifact_name": "lim-1", "all_devices": True},
                    headers=admin)  # fmt: skip
    assert r.status_code == 201
    body = {"device_provides": {"device_type": "qemux86-64", "artifact_name": "old"}}
    return client.post(NEXT, json=body, headers=device.headers).json()["id"]


def test_device_log_over_the_caps_is_413(client, admin, tmp_path):
    device, _ = _device(client, admin)
    dep = _deployment_for(client, admin, device, tmp_path)
    many = {"messages": [{"level": "info", "message": "m"}] * (limits.MAX_LOG_MESSAGES + 1)}
    assert client.put(LOG.format(dep), json=many, headers=device.headers).status_code == 413
    big = {"messages": [{"level": "info", "message": "x" * limits.MAX_LOG_BODY}]}
    r = client.put(LOG.format(dep), json=big, headers=device.headers)
    assert r.status_code == 413
    assert r.json()["error"] == f"request body over {limits.MAX_LOG_BODY} bytes"
    ok = {"messages": [{"level": "info", "message": "fine"}]}
    assert client.put(LOG.format(dep), json=ok, headers=device.headers).status_code == 204


def test_deeply_nested_log_message_is_400(client, admin, tmp_path):
    device, _ = _device(client, admin)
    dep = _deployment_for(client, admin, device, tmp_path)
    nested: object = "x"
    for _ in range(limits.MAX_JSON_DEPTH + 5):
        nested = [nested]
    body = {"messages": [{"level": "info", "message": "m", "extra": nested}]}
    r = client.put(LOG.format(dep), json=body, headers=device.headers)
    assert r.status_code == 400
    assert "nests deeper" in r.json()["error"]


def test_deployment_name_over_256_characters_is_refused(client, admin):
    r = client.post(DEPLOYMENTS, json={"name": "n" * 257, "artifact_name": "a", "all_devices": True},
                    headers=admin)  # fmt: skip
    assert r.status_code == 422
    assert r.json()["error"].startswith("body.name:")
    assert "\n" not in r.json()["error"]
