"""The device as the commands see it: config, data dir, store, env, scripts, installers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .bootenv import BootEnv, open_bootenv
from .bootstrap import take_bootstrap
from .config import Config
from .errors import UpdateError
from .payloads.base import Installer
from .payloads.delta import SLOT_PAYLOADS
from .payloads.module import ModuleInstaller, find_module
from .payloads.rootfs import RootfsInstaller
from .scripts import ScriptRunner, ScriptSettings
from .slots import slot_by_number, slots_from_config
from .store import InFlight, Store


@dataclass(frozen=True, slots=True)
class Device:
    """Args:
    config: the parsed config.
    data_dir: `--data`, default /var/lib/pyupdate.
    module_kill_grace: seconds between SIGTERM and SIGKILL for a module (mender: 60).
    """

    config: Config
    data_dir: Path
    module_kill_grace: float = 60

    def store(self, create: bool = True) -> Store | None:
        """The store; a new one starts with the build's bootstrap artifact (bootstrap.py)."""
        store = Store.open(self.data_dir, create=create)
        if store is not None and create:
            take_bootstrap(store, self.data_dir, self.config)
        return store

    def bootenv(self) -> BootEnv:
        return open_bootenv(self.config)

    def scripts(self) -> ScriptRunner:
        settings = ScriptSettings(
            timeout=self.config.state_script_timeout_seconds,
            retry_timeout=self.config.state_script_retry_timeout_seconds,
            retry_interval=self.config.state_script_retry_interval_seconds,
        )
        return ScriptRunner([Path(d) for d in self.config.scripts_dirs], self.script_dir, settings)

    @property
    def script_dir(self) -> Path:
        return self.data_dir / "scripts"

    @property
    def module_tree(self) -> Path:
        return self.data_dir / "modules" / "v3" / "payloads" / "0000" / "tree"

    def module_installer(self, payload_type: str) -> ModuleInstaller:
        module = find_module(payload_type, self.config.modules_dirs)
        return ModuleInstaller(
            module, self.module_tree, self.config.module_timeout_seconds, self.module_kill_grace
        )

    def installer_for(self, update: InFlight) -> Installer:
        """Rebuild the installer of an update in flight (commit, rollback, recovery)."""
        if update.payload_type not in SLOT_PAYLOADS:
            return self.module_installer(update.payload_type)
        if update.old_slot is None or update.new_slot is None:
            raise UpdateError(f"store: rootfs update {update.artifact_name} has no slots recorded")
        slots = slots_from_config(self.config)
        # a delta, once written, is a rootfs update like any other: only its download differs
        return RootfsInstaller(
            self.bootenv(),
            slots,
            slot_by_number(slots, update.old_slot),
            slot_by_number(slots, update.new_slot),
        )
