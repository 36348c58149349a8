"""Delta updates at hand-out: who may get one, which artifact a device gets, what it was
sent (docs/deployments.md, "Delta updates").

The one home of the rule "this device accepts deltas": the Mender client does not know
the `pyupdate-delta` payload type, and a device that reports the update module but is
no pyupdate agent may be anything, so both must be set in its stored inventory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from pyupdate_artifact.delta.format import DELTA_TYPE
from pyupdate_server.db.models import Artifact, DeviceDeployment

CHECKSUM = "rootfs-image.checksum"  # a delta depends on the old image's, provides the new's
DELIVERIES = ("full", "delta", "fallback")


def accepts_deltas(inventory: Mapping[str, object]) -> bool:
    """A pyupdate agent that installs `pyupdate-delta` payloads (the agent reports both
    attributes); anything else, the Mender client first, is sent full artifacts."""
    if "pyupdate_version" not in inventory:
        return False
    modules = inventory.get("update_modules")
    if isinstance(modules, str):
        modules = [modules]
    return isinstance(modules, list) and DELTA_TYPE in [str(m) for m in modules]


def is_delta(artifact: Artifact) -> bool:
    return DELTA_TYPE in (artifact.payload_types or [])


@dataclass(frozen=True, slots=True)
class Choice:
    """What a device is handed (`artifact`) and the full artifact it would otherwise
    get (`full`; the same one when it gets the full artifact)."""

    artifact: Artifact
    full: Artifact | None


def choose(fitting: Iterable[Artifact], *, deltas: bool) -> Choice | None:
    """Among the artifacts whose depends the device meets, newest first: the newest full
    one, or for a device that accepts deltas the newest delta when it is smaller than
    that (or there is no full one)."""
    full: Artifact | None = None
    delta: Artifact | None = None
    for artifact in fitting:
        if is_delta(artifact):
            if deltas and delta is None:
                delta = artifact
        elif full is None:
            full = artifact
    if delta is not None and (full is None or delta.size < full.size):
        return Choice(delta, full)
    return Choice(full, full) if full is not None else None


def record(row: DeviceDeployment, choice: Choice) -> None:
    """At hand-out: what this device is sent, and what the full artifact weighs."""
    delta = is_delta(choice.artifact)
    row.delivery = "delta" if delta else "full"
    row.bytes_sent = choice.artifact.size
    row.full_size = choice.full.size if choice.full is not None else None


def record_fallback(row: DeviceDeployment, full: Artifact) -> bool:
    """The device's delta did not fit its slot and it fetches the full artifact through
    the fallback link: it cost the full size (the few delta bytes read before the
    base check are not counted). False when the row is no delta hand-out."""
    if row.delivery not in ("delta", "fallback") or row.final:
        return False
    row.delivery = "fallback"
    row.bytes_sent = full.size
    row.full_size = full.size
    return True


@dataclass(frozen=True, slots=True)
class Totals:
    """A deployment's deliveries: devices per kind, bytes sent, bytes the full
    artifacts would have been, and the difference (bytes saved)."""

    full: int = 0
    delta: int = 0
    fallback: int = 0
    bytes_sent: int = 0
    full_bytes: int = 0

    @property
    def bytes_saved(self) -> int:
        return max(self.full_bytes - self.bytes_sent, 0)


def totals(session: Session, deployment_id: str) -> Totals:
    """One GROUP BY over the deployment's rows (ix_dd_deployment_open covers the filter)."""
    counts = {k: 0 for k in DELIVERIES}
    sent = full = 0
    for delivery, n, b_sent, b_full in session.execute(
        select(
            DeviceDeployment.delivery,
            func.count(),
            func.coalesce(func.sum(DeviceDeployment.bytes_sent), 0),
            func.coalesce(
                func.sum(
                    case(
                        (DeviceDeployment.full_size.is_(None), DeviceDeployment.bytes_sent),
                        else_=DeviceDeployment.full_size,
                    )
                ),
                0,
            ),
        )
        .where(
            DeviceDeployment.deployment_id == deployment_id,
            DeviceDeployment.delivery.is_not(None),
        )
        .group_by(DeviceDeployment.delivery)
    ):
        if delivery in counts:
            counts[delivery] = int(n)
            sent += int(b_sent)
            full += int(b_full)
    return Totals(counts["full"], counts["delta"], counts["fallback"], sent, full)
