"""Downgrade protection on the server (docs/deployments.md §11), on both engines: refused
at creation for known targets, skipped at hand-out for the rest, unless allowed."""

from __future__ import annotations

import pytest
from test_dynamic_groups import deploy_dynamic, saved, set_inventory
from test_rollout import add_device, deploy, poll, row

from pyupdate_server.db.engine import Database
from pyupdate_server.db.models import Artifact
from pyupdate_server.errors import Unprocessable


@pytest.fixture
def db(tmp_path, database_url):
    database = Database(database_url or f"sqlite:///{tmp_path / 'g.db'}")
    database.migrate()
    yield database
    database.dispose()


def add_versioned(db, name, version, device_types=("dt",)):
    with db.write() as s:
        provides = {"artifact_name": name}
        if version is not None:
            provides["rootfs-image.version"] = version
        s.add(
            Artifact(
                name=name,
                device_types=list(device_types),
                depends={},
                depends_key=f"{name}{device_types}",
                provides=provides,
                payload_types=["rootfs-image"],
                size=1,
                sha256="0" * 64,
                blob=name,
            )
        )


def test_an_older_artifact_is_refused_in_one_line_unless_allowed(db):
    add_versioned(db, "release-9", "release-9")
    dev = add_device(db, "new")
    set_inventory(db, dev, device_type="dt", **{"rootfs-image.version": "release-10"})
    with pytest.raises(Unprocessable) as exc:
        deploy(db, "release-9", [dev])
    assert str(exc.value) == (
        f"release-9 is older than what device {dev} runs: rootfs-image.version "
        "release-9 < release-10 (set allow_downgrade to deploy it)"
    )
    dep = deploy(db, "release-9", [dev], allow_downgrade=True)
    assert poll(db, dev) == dep


@pytest.mark.parametrize(
    ("artifact_version", "running"),
    [
        ("release-10", "release-9"),  # newer
        ("release-10", "release-10"),  # the same again
        ("hotfix-1", "release-10"),  # not comparable: never refused
        (None, "release-10"),  # the artifact provides no version
        ("release-9", None),  # the device reports none
    ],
)
def test_what_is_not_a_downgrade(db, artifact_version, running):
    add_versioned(db, "candidate", artifact_version)
    dev = add_device(db, "d")
    if running is not None:
        set_inventory(db, dev, **{"rootfs-image.version": running})
    assert poll(db, dev) is None
    dep = deploy(db, "candidate", [dev])
    assert poll(db, dev) == dep


def test_a_device_updated_since_creation_is_skipped_at_hand_out(db):
    add_versioned(db, "release-9", "release-9")
    dev = add_device(db, "moved-on")
    dep = deploy(db, "release-9", [dev])
    # the device reports its new version with its deployment check (v2 provides)
    assert poll(db, dev, **{"rootfs-image.version": "release-10"}) is None
    got = row(db, dep, dev)
    assert got.status == "skipped" and got.final
    assert got.substate == "downgrade refused: rootfs-image.version release-9 < release-10"


def test_dynamic_groups_skip_newer_devices_at_hand_out(db):
    add_versioned(db, "release-9", "release-9")
    old, new = add_device(db, "old"), add_device(db, "new")
    set_inventory(db, old, channel="beta", **{"rootfs-image.version": "release-8"})
    set_inventory(db, new, channel="beta", **{"rootfs-image.version": "release-10"})
    dep = deploy_dynamic(db, "release-9", saved(db))  # no refusal: targets are not known
    assert poll(db, old) == dep
    assert poll(db, new) is None
    assert row(db, dep, new).status == "skipped"
    allowed = deploy_dynamic(db, "release-9", saved(db, name="again"), allow_downgrade=True)
    assert poll(db, new) == allowed
