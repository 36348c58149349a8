"""Fleet reads for the web UI: counts by status and by an inventory attribute, and one
device's deployment history (api/management/fleet.py)."""

from __future__ import annotations

from server_helpers import accept, make_device, upload

from pyupdate_testing.artifacts import write_test_artifact

ATTRS = "/api/devices/v1/inventory/device/attributes"
STATS = "/api/management/v1/inventory/statistics"
HISTORY = "/api/management/v1/deployments/deployments/devices/{}"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"


def test_statistics_count_devices_by_status_and_by_attribute(client, admin):
    for name, artifact in (("a", "r1"), ("b", "r1"), ("c", "r2"), ("d", None)):
        device = make_device(client, name)
        accept(client, admin, device)
        attrs = [{"name": "device_type", "value": "qemux86-64"}]
        if artifact:
            attrs.append({"name": "artifact_name", "value": artifact})
        assert client.put(ATTRS, json=attrs, headers=device.headers).status_code == 200
    assert make_device(client, "pending").authenticate().status_code == 401

    stats = client.get(STATS, headers=admin).json()
    assert stats["devices"] == 5
    assert stats["by_status"]["accepted"] == 4
    assert stats["by_status"]["pending"] == 1
    assert stats["by_status"]["decommissioned"] == 0
    assert stats["attribute"] == "artifact_name"
    assert stats["values"] == [{"value": "r1", "count": 2}, {"value": "r2", "count": 1}]
    assert (stats["other"], stats["missing"]) == (0, 1)

    top = client.get(STATS, params={"limit": 1}, headers=admin).json()
    assert top["values"] == [{"value": "r1", "count": 2}]
    assert (top["other"], top["missing"]) == (1, 1)
    by_type = client.get(STATS, params={"attribute": "device_type"}, headers=admin).json()
    assert by_type["values"] == [{"value": "qemux86-64", "count": 4}]


def test_statistics_refuse_bad_requests_in_one_line(client, admin):
    r = client.get(STATS, params={"attribute": 'a"b'}, headers=admin)
    assert r.status_code == 400
    assert "\n" not in r.json()["error"]
    assert client.get(STATS, params={"limit": 51}, headers=admin).status_code == 422


def test_a_devices_history_lists_its_deployments_newest_first_a_page_at_a_time(
    client, admin, tmp_path
):
    device = make_device(client, "hist")
    device_id = accept(client, admin, device)
    for n in (1, 2, 3):
        assert upload(client, admin, write_test_artifact(tmp_path / f"r{n}.mender", f"r{n}"))
        r = client.post(
            DEPLOYMENTS,
            json={"name": f"to r{n}", "artifact_name": f"r{n}", "devices": [device_id]},
            headers=admin,
        )
        assert r.status_code == 201, r.text

    r = client.get(HISTORY.format(device_id), params={"per_page": 2}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.headers["X-Total-Count"] == "3"
    names = [e["deployment"]["name"] for e in r.json()]
    assert names == ["to r3", "to r2"]
    entry = r.json()[0]
    assert entry["device"]["id"] == device_id
    assert entry["device"]["status"] == "pending"
    assert entry["device"]["log"] is False
    page2 = client.get(HISTORY.format(device_id), params={"per_page": 2, "page": 2}, headers=admin)
    assert [e["deployment"]["name"] for e in page2.json()] == ["to r1"]
    assert client.get(HISTORY.format("nope"), headers=admin).status_code == 404


def test_a_deployments_devices_come_a_page_at_a_time_cut_by_the_database(client, admin, tmp_path):
    ids = [accept(client, admin, make_device(client, f"page{n}")) for n in range(5)]
    assert upload(client, admin, write_test_artifact(tmp_path / "r1.mender", "r1"))
    r = client.post(
        DEPLOYMENTS, json={"name": "to r1", "artifact_name": "r1", "devices": ids}, headers=admin
    )
    assert r.status_code == 201, r.text
    dep = r.headers["Location"].rsplit("/", 1)[1]
    pages = [
        client.get(
            f"{DEPLOYMENTS}/{dep}/devices/list", params={"per_page": 2, "page": n}, headers=admin
        )
        for n in (1, 2, 3, 4)
    ]
    assert {p.headers["X-Total-Count"] for p in pages} == {"5"}
    assert [len(p.json()) for p in pages] == [2, 2, 1, 0]
    assert sorted(d["id"] for p in pages for d in p.json()) == sorted(ids)
    # Mender's own route stays whole
    assert len(client.get(f"{DEPLOYMENTS}/{dep}/devices", headers=admin).json()) == 5
