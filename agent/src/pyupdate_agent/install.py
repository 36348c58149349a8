"""The Download action: verify, check depends, record the update, stream the payload.

Order (docs/agent.md, "Install"): header and signature (`read_header()`;
nothing is written before it verifies) -> the deployment's name and device
types (managed) -> device type and depends -> everything that can refuse the
install (slots, env, module) -> (the Download step records the update with the
machine's record, in one transaction) -> the payload streamed to the installer,
every file's sha256 checked. A refusal before the record is one history row.
The state scripts, SupportsRollback and what follows are the table's
(core/states.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pyupdate_artifact.errors import ArtifactError, CompatibilityError
from pyupdate_artifact.model import ArtifactHeader
from pyupdate_artifact.provides import check_depends, older_versions, provides_after_commit
from pyupdate_artifact.reader import ArtifactReader
from pyupdate_artifact.verify import load_verifier

from .config import read_device_type
from .core.record import Deployment, InFlight, Phase
from .device import Device
from .errors import AgentError, ArtifactRefused, InputError, SlotError, UpdateError
from .log import deployment_log, new_log_path
from .payloads.base import Installer
from .payloads.delta import DELTA_TYPE, SLOT_PAYLOADS, DeltaInstaller, delta_checksums
from .payloads.module import ModuleContext, write_tree
from .payloads.rootfs import RootfsInstaller
from .provides import current_provides
from .scripts import store_artifact_scripts
from .slots import other_slot, running_slot, slots_from_config
from .store import Store, new_update_id

log = logging.getLogger(__name__)


def open_source(source: str, device: Device) -> BinaryIO:
    """A local file, or an http(s) URL streamed without seeking: the daemon's download
    (download.py), resumed with Range after a dropped connection, within the same
    limits (RequestTimeoutSeconds, DownloadMaxResumes, DownloadResumeSeconds)."""
    if source.startswith(("http://", "https://")):
        from .download import open_download
        from .tls import tls_context

        config = device.config
        return open_download(  # type: ignore[return-value]
            source,
            tls_context(config.server_certificate, config.skip_verify),
            timeout=config.request_timeout_seconds,
            max_resumes=config.download_max_resumes,
            max_seconds=config.download_resume_seconds,
        )
    try:
        return open(source, "rb", buffering=0)
    except OSError as err:
        raise InputError(f"{source}: cannot open artifact ({err.strerror})") from None


def _module_context(
    header: ArtifactHeader, provides: dict[str, str], device_type: str | None
) -> ModuleContext:
    payload = header.payloads[0]
    return ModuleContext(
        current_artifact_name=provides.get("artifact_name", ""),
        current_artifact_group=provides.get("artifact_group", ""),
        current_device_type=device_type or "",
        artifact_name=header.artifact_name,
        artifact_group=header.artifact_group or "",
        payload_type=str(payload.type),
        header_info=header.header_info.as_dict(),
        type_info=payload.type_info.as_dict(),
        meta_data=payload.meta_data,
    )


def _build_installer(
    device: Device, header: ArtifactHeader
) -> tuple[Installer, int | None, int | None]:
    """The installer for the one payload, with the old/new slot numbers for rootfs-image
    and pyupdate-delta (the same slots: payloads/delta.py).

    Everything that can be refused (missing slot, unreadable env, unknown
    module) is refused here, before the update is recorded or anything written.
    """
    if len(header.payloads) != 1:
        raise UpdateError(
            f"artifact {header.artifact_name} has {len(header.payloads)} payloads;"
            " exactly one is supported"
        )
    payload_type = header.payloads[0].type
    if payload_type is None:
        raise UpdateError(
            f"artifact {header.artifact_name} has an empty payload; nothing to install"
        )
    if payload_type not in SLOT_PAYLOADS:
        return device.module_installer(payload_type), None, None
    # a delta's checksums are signed (type-info): without them it cannot be verified
    checksums = delta_checksums(header) if payload_type == DELTA_TYPE else None
    slots = slots_from_config(device.config)
    env = device.bootenv()
    state = env.state()
    if state.trial:
        raise UpdateError(
            f"{env.name}: slot {state.primary.label} is on trial: commit or roll back first"
        )
    old = running_slot(slots, state.booted)
    new = other_slot(slots, old)
    if not Path(new.path).exists():
        raise SlotError(f"slot {new.label}: {new.path} does not exist")
    if checksums is not None:
        return DeltaInstaller(env, slots, old, new, *checksums), old.number, new.number
    return RootfsInstaller(env, slots, old, new), old.number, new.number


def check_not_older(header: ArtifactHeader, provides: dict[str, str]) -> None:
    """Downgrade protection: refuse an artifact older than what runs (the version rule:
    pyupdate_artifact.provides.compare_versions; docs/agent.md, "Downgrade protection")."""
    older = older_versions(header, provides)
    if older:
        key, new, running = older[0]
        raise CompatibilityError(
            f"artifact {header.artifact_name} is older than the running software: {key}"
            f" {new} < {running} (set AllowDowngrade to install it)"
        )


def check_deployment(header: ArtifactHeader, deployment: Deployment) -> None:
    """The artifact is the one the server announced, for every device type it listed."""
    if header.artifact_name != deployment.artifact_name:
        raise UpdateError(
            f"artifact is named {header.artifact_name}, the server announced"
            f" {deployment.artifact_name}"
        )
    missing = set(deployment.device_types) - set(header.device_types)
    if missing:
        raise UpdateError(
            f"artifact {header.artifact_name} is not for device type {', '.join(sorted(missing))}"
        )


@dataclass(frozen=True, slots=True)
class Prepared:
    """An artifact whose header was accepted; nothing written yet. `stream` is open."""

    stream: BinaryIO
    reader: ArtifactReader
    header: ArtifactHeader
    installer: Installer
    update: InFlight
    provides: dict[str, str]
    device_type: str | None


def prepare(
    device: Device,
    store: Store,
    source: str | BinaryIO,
    deployment: Deployment | None,
    update_id: str | None = None,
) -> Prepared:
    """Open `source` (a path, a URL or an open stream) and check everything that can
    refuse it; a refusal is one history row and one AgentError (ArtifactRefused for
    the artifact's own errors), the stream closed, nothing written. `update_id`: the
    update's (and its log's) id, when it goes on from a refused delta (core/steps.py)."""
    update_id = update_id or new_update_id()
    name = source if isinstance(source, str) else "artifact stream"
    stream: BinaryIO | None = None
    try:
        keys = [load_verifier(k) for k in device.config.artifact_verify_keys]
        stream = open_source(source, device) if isinstance(source, str) else source
        reader = ArtifactReader(stream, verify_keys=keys, require_signature=bool(keys))
        header = reader.read_header()
        name = header.artifact_name
        if deployment is not None:
            check_deployment(header, deployment)
        device_type = read_device_type(device.config, device.data_dir)
        provides = current_provides(store, device.config)
        check_depends(header, device_type, provides)
        if not device.config.allow_downgrade:
            check_not_older(header, provides)
        installer, old_slot, new_slot = _build_installer(device, header)
    except (AgentError, ArtifactError) as err:
        if stream is not None:
            stream.close()
        elif not isinstance(source, str):
            source.close()
        store.record_failure(update_id, name, str(err))
        raise _agent_error(err) from None
    update = InFlight(
        update_id=update_id,
        artifact_name=header.artifact_name,
        payload_type=str(header.payloads[0].type),
        phase=Phase.DOWNLOAD,
        new_provides=provides_after_commit(provides, header),
        log_path=str(new_log_path(device.data_dir, update_id)),
        old_slot=old_slot,
        new_slot=new_slot,
    )
    return Prepared(stream, reader, header, installer, update, provides, device_type)


def stream_payload(device: Device, prepared: Prepared) -> None:
    """The artifact's scripts kept, then the payload streamed to the installer (every
    file's sha256 checked); call once the update is recorded. Closes the stream."""
    header, installer, update = prepared.header, prepared.installer, prepared.update
    try:
        with deployment_log(Path(update.log_path)):
            log.info(
                "installing", extra={"artifact": header.artifact_name, "update": update.update_id}
            )
            log.info(
                "phase", extra={"state": str(Phase.DOWNLOAD), "artifact": update.artifact_name}
            )
            store_artifact_scripts(device.script_dir, header.scripts, header.format_version)
            if not isinstance(installer, RootfsInstaller):
                context = _module_context(header, prepared.provides, prepared.device_type)
                write_tree(device.module_tree, context)
            try:
                sink = installer.begin_download()
                try:
                    prepared.reader.read_payloads(sink)
                    installer.end_download()
                except BaseException:
                    installer.abort_download()
                    raise
            except ArtifactError as err:
                raise _agent_error(err) from None
    finally:
        prepared.stream.close()


def _agent_error(err: AgentError | ArtifactError) -> AgentError:
    return err if isinstance(err, AgentError) else ArtifactRefused(err)
