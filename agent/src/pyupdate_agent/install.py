"""Standalone install: verify, check depends, stream the payload, then ArtifactInstall.

Order (docs/agent.md, "Install"): Download_Enter scripts -> header and signature
(`read_header()`; nothing is written before it verifies) -> device type and
depends -> the update is recorded in the store -> Download (payload streamed
to the installer, every file's sha256 checked) -> SupportsRollback ->
Download_Leave -> ArtifactInstall_Enter -> ArtifactInstall -> ArtifactInstall_Leave
-> NeedsArtifactReboot -> stop and wait for commit (or commit at once when the
payload cannot roll back), exactly mender 3.4's standalone sequence.
"""

from __future__ import annotations

import logging
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pyupdate_artifact.errors import ArtifactError
from pyupdate_artifact.model import ArtifactHeader
from pyupdate_artifact.provides import check_depends, provides_after_commit
from pyupdate_artifact.reader import ArtifactReader
from pyupdate_artifact.sign import load_verifier

from .config import read_device_type
from .device import ROOTFS, Device
from .errors import AgentError, InputError, SlotError, UpdateError
from .flow import Flow
from .log import deployment_log, new_log_path
from .payloads.base import Installer
from .payloads.module import ModuleContext, write_tree
from .payloads.rootfs import RootfsInstaller
from .provides import current_provides
from .scripts import ScriptRunner, store_artifact_scripts
from .slots import on_trial, other_slot, running_slot, slots_from_config
from .store import InFlight, Phase, Store, new_update_id

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InstallResult:
    artifact_name: str
    committed: bool
    needs_reboot: str  # No, Yes, Automatic


def open_source(source: str, device: Device) -> BinaryIO:
    """A local file, or an http(s) URL streamed without seeking."""
    if source.startswith(("http://", "https://")):
        context = None
        if source.startswith("https://"):
            context = ssl.create_default_context(cafile=device.config.server_certificate)
            if device.config.skip_verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        try:
            return urllib.request.urlopen(source, timeout=60, context=context)
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise InputError(f"{source}: cannot download ({reason})") from None
    try:
        return open(source, "rb", buffering=0)
    except OSError as err:
        raise InputError(f"{source}: cannot open artifact ({err.strerror})") from None


def _module_context(
    device: Device, header: ArtifactHeader, provides: dict[str, str], device_type: str | None
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
    """The installer for the one payload, with the old/new slot numbers for rootfs-image.

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
    if payload_type != ROOTFS:
        return device.module_installer(payload_type), None, None
    slots = slots_from_config(device.config)
    env = device.bootenv()
    values = env.read()
    if on_trial(values):
        raise UpdateError(
            "the boot env has an update on trial (upgrade_available=1): commit or roll back first"
        )
    old = running_slot(slots, values)
    new = other_slot(slots, old)
    if not Path(new.path).exists():
        raise SlotError(f"slot {new.label}: {new.path} does not exist")
    return RootfsInstaller(env, slots, old, new), old.number, new.number


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the daemon (daemon/machine.py) adds to an install; all optional.

    Args:
        check_header: called with the verified header before anything is recorded;
            raising AgentError refuses the artifact (e.g. not the name the server announced).
        on_state: called with `Download` once the update is recorded in flight (inside
            the deployment log), and with `ArtifactInstall` before that state starts.
        auto_commit: commit a payload without rollback support at once (standalone,
            like mender); the daemon commits itself, after reporting to the server.
    """

    check_header: Callable[[ArtifactHeader], None] | None = None
    on_state: Callable[[str], None] | None = None
    auto_commit: bool = True


def install(
    device: Device, store: Store, source: str | BinaryIO, hooks: Hooks | None = None
) -> InstallResult:
    """Install `source` (a path, a URL or an open stream); raises AgentError or
    ArtifactError with one line on failure."""
    scripts = device.scripts()
    scripts.run("Download", "Enter")
    return _install(device, store, source, scripts, hooks or Hooks())


def _install(
    device: Device, store: Store, source: str | BinaryIO, scripts: ScriptRunner, hooks: Hooks
) -> InstallResult:
    update_id = new_update_id()
    name_for_record = source if isinstance(source, str) else "artifact stream"
    stream: BinaryIO | None = None
    try:
        try:
            keys = [load_verifier(k) for k in device.config.artifact_verify_keys]
            stream = open_source(source, device) if isinstance(source, str) else source
            reader = ArtifactReader(stream, verify_keys=keys, require_signature=bool(keys))
            header = reader.read_header()
            name_for_record = header.artifact_name
            if hooks.check_header is not None:
                hooks.check_header(header)
            device_type = read_device_type(device.config, device.data_dir)
            provides = current_provides(store, device.config)
            check_depends(header, device_type, provides)
            installer, old_slot, new_slot = _build_installer(device, header)
        except (AgentError, ArtifactError) as err:
            scripts.run("Download", "Error", ignore_errors=True)
            store.record_failure(update_id, name_for_record, str(err))
            raise
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
        # recorded before the first payload byte is written: a power cut from here
        # on is found by the next command
        update = store.begin(update)
        flow = Flow(store, update, installer, scripts)
        with deployment_log(Path(update.log_path)):
            log.info("installing", extra={"artifact": header.artifact_name, "update": update_id})
            if hooks.on_state is not None:
                hooks.on_state("Download")
            return _download_and_install(device, flow, reader, header, provides, device_type, hooks)
    finally:
        if stream is not None:
            stream.close()


def _download_and_install(
    device: Device,
    flow: Flow,
    reader: ArtifactReader,
    header: ArtifactHeader,
    provides: dict[str, str],
    device_type: str | None,
    hooks: Hooks,
) -> InstallResult:
    installer = flow.installer
    store_artifact_scripts(device.script_dir, header.scripts, header.format_version)
    if not isinstance(installer, RootfsInstaller):
        write_tree(device.module_tree, _module_context(device, header, provides, device_type))
    try:
        sink = installer.begin_download()
        try:
            reader.read_payloads(sink)
            installer.end_download()
        except BaseException:
            installer.abort_download()
            raise
        flow.enter(Phase.DOWNLOAD, supports_rollback=installer.supports_rollback())
        flow.scripts.run("Download", "Leave")
    except (AgentError, ArtifactError) as err:
        flow.scripts.run("Download", "Error", ignore_errors=True)
        # nothing was installed yet: no rollback, only failure states and cleanup
        flow.fail(str(err), rollback=False)
        raise

    if hooks.on_state is not None:
        hooks.on_state("ArtifactInstall")
    flow.enter(Phase.INSTALL)
    try:
        flow.scripts.run("ArtifactInstall", "Enter")
        installer.install()
        flow.scripts.run("ArtifactInstall", "Leave")
    except AgentError as err:
        flow.scripts.run("ArtifactInstall", "Error", ignore_errors=True)
        flow.fail(str(err))
        raise
    needs_reboot = installer.needs_reboot()
    if flow.update.supports_rollback or not hooks.auto_commit:
        flow.enter(Phase.INSTALLED, needs_reboot=needs_reboot)
        return InstallResult(header.artifact_name, committed=False, needs_reboot=needs_reboot)
    # no way back: mender commits such payloads at once
    flow.enter(Phase.INSTALLED, needs_reboot=needs_reboot)
    flow.commit()
    return InstallResult(header.artifact_name, committed=True, needs_reboot=needs_reboot)
