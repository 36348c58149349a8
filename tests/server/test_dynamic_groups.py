"""Deployments to dynamic groups (docs/deployments.md §9), on both engines: membership is
decided at each deployment check, so devices that join while it is open get it, and
devices that left before they were handed it do not."""

from __future__ import annotations

import pytest
from server_helpers import accept, make_device, upload
from sqlalchemy import select
from test_rollout import add_artifact, add_device, deploy, poll, report

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Deployment, Device, DeviceDeployment
from pyupdate_server.errors import BadRequest, NotFound
from pyupdate_server.services import control, creation, filters
from pyupdate_testing.artifacts import write_test_artifact

BETA = [{"scope": "inventory", "attribute": "channel", "type": "$eq", "value": "beta"}]


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'd.db'}")
    database.migrate()
    yield database
    database.dispose()


def set_inventory(db, device_id, **inventory):
    with db.write() as s:
        s.get(Device, device_id).inventory = inventory


def saved(db, terms=BETA, name="beta"):
    with db.write() as s:
        return filters.create(s, name, terms).id


def deploy_dynamic(db, artifact, filter_id, **kw):
    with db.write() as s:
        return creation.create_deployment(
            s, name=f"dyn-{artifact}", artifact_name=artifact, filter_id=filter_id, **kw
        ).id


def rows_of(db, dep):
    with db.read() as s:
        return list(
            s.scalars(
                select(DeviceDeployment.device_id).where(DeviceDeployment.deployment_id == dep)
            )
        )


def status_of(db, dep):
    with db.read() as s:
        return s.get(Deployment, dep).status


def test_members_get_it_and_others_do_not(db):
    add_artifact(db, "r1")
    member, other = add_device(db, "m"), add_device(db, "o")
    set_inventory(db, member, channel="beta")
    set_inventory(db, other, channel="stable")
    dep = deploy_dynamic(db, "r1", saved(db))
    assert poll(db, other) is None
    assert poll(db, member) == dep
    assert rows_of(db, dep) == [member]  # a row only for who took part


def test_a_device_that_joins_while_it_is_open_gets_it(db):
    add_artifact(db, "r1")
    dev = add_device(db, "late")
    dep = deploy_dynamic(db, "r1", saved(db))
    assert poll(db, dev) is None
    set_inventory(db, dev, channel="beta")
    assert poll(db, dev) == dep


def test_a_device_that_leaves_before_it_is_handed_it_does_not_get_it(db):
    add_artifact(db, "r1")
    dev = add_device(db, "leaver")
    set_inventory(db, dev, channel="beta")
    dep = deploy_dynamic(db, "r1", saved(db))
    set_inventory(db, dev, channel="stable")
    assert poll(db, dev) is None
    assert rows_of(db, dep) == []


def test_a_member_busy_with_an_older_deployment_is_checked_again_at_its_turn(db):
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    dev = add_device(db, "busy")
    set_inventory(db, dev, channel="beta")
    first = deploy(db, "r1", [dev])
    dyn = deploy_dynamic(db, "r2", saved(db))
    assert poll(db, dev) == first  # the older one first
    set_inventory(db, dev, channel="stable")  # leaves while busy
    report(db, dev, first, "success")
    assert poll(db, dev, current="r1") is None
    assert rows_of(db, dyn) == []


def test_it_waits_behind_an_older_deployment_and_comes_next(db):
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    dev = add_device(db, "queue")
    set_inventory(db, dev, channel="beta")
    dyn = deploy_dynamic(db, "r1", saved(db))
    later = deploy(db, "r2", [dev])
    assert poll(db, dev) == dyn  # made first, handed first
    report(db, dev, dyn, "success")
    assert poll(db, dev, current="r1") == later


def test_not_offered_after_a_newer_deployment_the_device_took_part_in(db):
    # Mender's order rule: deployments reach a device in the order they were made
    add_artifact(db, "r1")
    add_artifact(db, "r2")
    dev = add_device(db, "order")
    dyn = deploy_dynamic(db, "r1", saved(db))
    newer = deploy(db, "r2", [dev])
    assert poll(db, dev) == newer
    report(db, dev, newer, "success")
    set_inventory(db, dev, channel="beta")  # joins the older dynamic group now
    assert poll(db, dev, current="r2") is None
    assert rows_of(db, dyn) == []


def test_it_stays_open_until_aborted_and_only_accepted_devices_join(db):
    add_artifact(db, "r1")
    dev, rejected = add_device(db, "done"), add_device(db, "rejected")
    set_inventory(db, dev, channel="beta")
    set_inventory(db, rejected, channel="beta")
    with db.write() as s:
        s.get(Device, rejected).status = "rejected"
    dep = deploy_dynamic(db, "r1", saved(db))
    assert poll(db, rejected) is None
    assert poll(db, dev) == dep
    report(db, dev, dep, "success")
    assert status_of(db, dep) == "inprogress"  # every row final, but devices may join
    with db.write() as s:
        control.abort(s, dep)
    assert status_of(db, dep) == "finished"
    newcomer = add_device(db, "after-abort")
    set_inventory(db, newcomer, channel="beta")
    assert poll(db, newcomer) is None


def test_max_devices_caps_it_and_then_it_finishes(db):
    add_artifact(db, "r1")
    devs = [add_device(db, f"cap{i}") for i in range(3)]
    for d in devs:
        set_inventory(db, d, channel="beta")
    dep = deploy_dynamic(db, "r1", saved(db), max_devices=2)
    assert poll(db, devs[0]) == dep
    assert poll(db, devs[1]) == dep
    assert poll(db, devs[2]) is None
    for d in devs[:2]:
        report(db, d, dep, "success")
    assert status_of(db, dep) == "finished"


def test_pause_holds_joiners_without_a_row(db):
    add_artifact(db, "r1")
    dev = add_device(db, "paused")
    set_inventory(db, dev, channel="beta")
    dep = deploy_dynamic(db, "r1", saved(db))
    with db.write() as s:
        control.pause(s, dep)
    assert poll(db, dev) is None
    assert rows_of(db, dep) == []
    set_inventory(db, dev, channel="stable")  # left while it was paused
    with db.write() as s:
        control.resume(s, dep)
    assert poll(db, dev) is None
    set_inventory(db, dev, channel="beta")
    assert poll(db, dev) == dep


def test_the_filter_is_kept_as_it_was_when_the_deployment_was_made(db):
    add_artifact(db, "r1")
    dev = add_device(db, "kept")
    set_inventory(db, dev, channel="beta")
    filter_id = saved(db)
    dep = deploy_dynamic(db, "r1", filter_id)
    with db.write() as s:
        filters.delete(s, filter_id)
    assert poll(db, dev) == dep


def test_bad_dynamic_deployments_are_refused(db):
    add_artifact(db, "r1")
    filter_id = saved(db)
    with pytest.raises(NotFound, match="filter nope not found"):
        deploy_dynamic(db, "r1", "nope")
    from pyupdate_server.services.phases import PhaseSpec

    with pytest.raises(BadRequest, match="not for a dynamic group"):
        deploy_dynamic(db, "r1", filter_id, phase_specs=[PhaseSpec(batch_size=50), PhaseSpec()])
    with pytest.raises(BadRequest, match="exactly one of"), db.write() as s:
        creation.create_deployment(
            s, name="x", artifact_name="r1", filter_id=filter_id, all_devices=True
        )


def test_dynamic_deployment_over_http(client, admin, tmp_path):
    upload(client, admin, write_test_artifact(tmp_path / "r.mender", "release-1"))
    devices = [make_device(client, f"h{i}") for i in range(3)]
    ids = [accept(client, admin, d) for d in devices]
    attrs = "/api/devices/v1/inventory/device/attributes"
    client.put(attrs, json=[{"name": "channel", "value": "beta"}], headers=devices[0].headers)
    r = client.post(
        "/api/management/v2/inventory/filters", json={"name": "beta", "terms": BETA}, headers=admin
    )
    filter_id = r.headers["Location"].rsplit("/", 1)[1]
    r = client.post(
        "/api/management/v2/deployments/deployments",
        json={"name": "to beta", "artifact_name": "release-1", "filter_id": filter_id},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    dep = r.headers["Location"].rsplit("/", 1)[1]
    nxt = "/api/devices/v1/deployments/device/deployments/next"
    params = {"artifact_name": "base", "device_type": "qemux86-64"}
    assert client.get(nxt, params=params, headers=devices[0].headers).json()["id"] == dep
    assert client.get(nxt, params=params, headers=devices[1].headers).status_code == 204
    client.put(attrs, json=[{"name": "channel", "value": "beta"}], headers=devices[1].headers)
    assert client.get(nxt, params=params, headers=devices[1].headers).json()["id"] == dep
    info = client.get(f"/api/management/v1/deployments/deployments/{dep}", headers=admin).json()
    assert info["filter"] == {"id": filter_id, "name": "beta", "terms": BETA}
    assert info["device_count"] == 2 and info["status"] == "inprogress"
    assert info["target"] == f"filter:{filter_id}"
    listed = client.get(
        f"/api/management/v1/deployments/deployments/{dep}/devices", headers=admin
    ).json()
    assert sorted(d["id"] for d in listed) == sorted(ids[:2])
    r = client.post(
        "/api/management/v2/deployments/deployments",
        json={
            "name": "x",
            "artifact_name": "release-1",
            "filter_id": filter_id,
            "phases": [{"batch_size": 50}, {"start_ts": "2099-01-01T00:00:00Z"}],
        },
        headers=admin,
    )
    assert r.status_code == 400 and "dynamic group" in r.json()["error"]
