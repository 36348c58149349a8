"""Inventory: device PUT replaces, PATCH upserts; management filters and groups."""

from __future__ import annotations

import time

from server_helpers import accept, make_device

from pyupdate_server import limits

ATTRS = "/api/devices/v1/inventory/device/attributes"
INV = "/api/management/v1/inventory"


def _attrs(client, admin, device_id):
    data = client.get(f"{INV}/devices/{device_id}", headers=admin).json()
    return {a["name"]: a["value"] for a in data["attributes"] if a["scope"] == "inventory"}


def test_put_replaces_and_patch_upserts(client, admin):
    device = make_device(client, "inv")
    device_id = accept(client, admin, device)
    body = [
        {"name": "device_type", "value": "qemux86-64"},
        {"name": "ipv4_eth0", "value": ["127.0.0.2/8", "127.0.0.3/8"]},
    ]
    assert client.put(ATTRS, json=body, headers=device.headers).status_code == 200
    assert _attrs(client, admin, device_id)["ipv4_eth0"] == ["127.0.0.2/8", "127.0.0.3/8"]
    client.patch(ATTRS, json=[{"name": "artifact_name", "value": "r1"}], headers=device.headers)
    assert _attrs(client, admin, device_id) == {
        "device_type": "qemux86-64",
        "ipv4_eth0": ["127.0.0.2/8", "127.0.0.3/8"],
        "artifact_name": "r1",
    }
    client.put(ATTRS, json=[{"name": "artifact_name", "value": "r2"}], headers=device.headers)
    assert _attrs(client, admin, device_id) == {"artifact_name": "r2"}


def test_garbage_inventory_is_422_and_stores_nothing(client, admin):
    device = make_device(client, "bad")
    device_id = accept(client, admin, device)
    r = client.put(ATTRS, content=b"{nope", headers=device.headers)
    assert r.status_code == 422
    assert r.json()["error"]
    r = client.put(ATTRS, json=[{"name": "", "value": 1}], headers=device.headers)
    assert r.status_code == 422
    assert _attrs(client, admin, device_id) == {}


def test_filter_by_attribute_and_group(client, admin):
    ids = []
    for i, device_type in enumerate(["a", "b", "a"]):
        device = make_device(client, f"f{i}")
        ids.append(accept(client, admin, device))
        client.put(
            ATTRS, json=[{"name": "device_type", "value": device_type}], headers=device.headers
        )
    listed = client.get(f"{INV}/devices", params={"device_type": "a"}, headers=admin).json()
    assert sorted(d["id"] for d in listed) == sorted([ids[0], ids[2]])
    assert (
        client.put(
            f"{INV}/devices/{ids[1]}/group", json={"group": "canary"}, headers=admin
        ).status_code
        == 204
    )
    assert client.get(f"{INV}/groups", headers=admin).json() == ["canary"]
    assert client.get(f"{INV}/groups/canary/devices", headers=admin).json() == [ids[1]]
    listed = client.get(f"{INV}/devices", params={"group": "canary"}, headers=admin).json()
    assert [d["id"] for d in listed] == [ids[1]]
    assert client.delete(f"{INV}/devices/{ids[1]}/group/canary", headers=admin).status_code == 204
    assert client.get(f"{INV}/groups", headers=admin).json() == []


def test_bad_group_name_is_422(client, admin):
    device = make_device(client, "g")
    device_id = accept(client, admin, device)
    r = client.put(f"{INV}/devices/{device_id}/group", json={"group": "a b/c"}, headers=admin)
    assert r.status_code == 422


def test_a_report_that_changes_nothing_writes_nothing(client, admin):
    """The fleet's steady state: the same attributes again are answered from a read;
    updated_ts (the web UI's "Last change") moves only when something changed."""
    device = make_device(client, "same")
    device_id = accept(client, admin, device)
    body = [{"name": "device_type", "value": "qemux86-64"}, {"name": "n", "value": [1, 2.5]}]
    assert client.put(ATTRS, json=body, headers=device.headers).status_code == 200

    def updated() -> str:
        return client.get(f"{INV}/devices/{device_id}", headers=admin).json()["updated_ts"]

    first = updated()
    time.sleep(0.01)
    assert client.put(ATTRS, json=body, headers=device.headers).status_code == 200
    # a PATCH of a subset with the same values is no change either
    assert client.patch(ATTRS, json=body[:1], headers=device.headers).status_code == 200
    assert updated() == first
    assert _attrs(client, admin, device_id) == {"device_type": "qemux86-64", "n": [1, 2.5]}
    # a PUT of a subset removes the rest: a change
    assert client.put(ATTRS, json=body[:1], headers=device.headers).status_code == 200
    assert updated() > first
    assert _attrs(client, admin, device_id) == {"device_type": "qemux86-64"}
    # limits hold on the read path too: nothing stored, 413
    over = [{"name": f"a{i}", "value": "x"} for i in range(limits.MAX_INVENTORY_ATTRS + 1)]
    assert client.put(ATTRS, json=over, headers=device.headers).status_code == 413
