"""Downgrade protection on the server (docs/deployments.md §11).

An artifact is older than what a device runs when one of its `*.version` provides
(`rootfs-image.version`, `rootfs-image.<module>.version`, ...) is older than the device's
value of the same key, compared by the agent's rule (`compare_versions`, shared with
it: docs/agent.md, "Downgrade protection"). The device's values are its inventory (the
Mender client and our agent report their provides there) updated with the provides of
its deployment check. A key the device does not report, or versions that cannot be
compared, are not a downgrade; an artifact that provides no `*.version` never is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from pyupdate_artifact.provides import compare_versions
from pyupdate_server.db.models import Artifact, Device
from pyupdate_server.errors import Unprocessable


def versions(*sources: Mapping[str, object]) -> dict[str, str]:
    """The `*.version` values of a device, later sources winning."""
    out: dict[str, str] = {}
    for source in sources:
        for key, value in source.items():
            if key.endswith(".version") and isinstance(value, str | int | float):
                out[key] = str(value)
    return out


def older(artifact: Artifact, running: Mapping[str, str]) -> str | None:
    """Why `artifact` is older than the `running` versions (one line), or None."""
    for key, new in sorted(artifact.provides.items()):
        have = running.get(key)
        if key.endswith(".version") and have is not None and compare_versions(new, have) == -1:
            return f"{key} {new} < {have}"
    return None


def _versioned(artifacts: Iterable[Artifact]) -> list[Artifact]:
    return [a for a in artifacts if any(k.endswith(".version") for k in a.provides)]


def check_targets(
    session: Session, artifact_name: str, device_ids: Sequence[str], batch: int = 1000
) -> None:
    """Unprocessable (one line) if the artifact is older than what a target runs.

    Each device is compared with the artifacts of that name it could be handed (its
    device type among theirs; every one if it reports none). Devices are read in
    batches: a deployment to a whole fleet does not load it at once.
    """
    artifacts = _versioned(session.scalars(select(Artifact).where(Artifact.name == artifact_name)))
    if not artifacts:
        return
    for start in range(0, len(device_ids), batch):
        chunk = device_ids[start : start + batch]
        for device_id, inventory in session.execute(
            select(Device.id, Device.inventory).where(Device.id.in_(chunk))
        ):
            device_type = inventory.get("device_type")
            running = versions(inventory)
            for artifact in artifacts:
                if device_type is not None and device_type not in artifact.device_types:
                    continue
                why = older(artifact, running)
                if why is not None:
                    raise Unprocessable(
                        f"{artifact_name} is older than what device {device_id} runs: "
                        f"{why} (set allow_downgrade to deploy it)"
                    )
