"""U-Boot: Mender's variables (mender.py) through libubootenv's fw_printenv / fw_setenv.

All writes go through ONE `fw_setenv -s -` script of `name=value` lines: with
a redundant env (two copies in fw_env.config) libubootenv writes the inactive
copy and flips the flag, so a power cut leaves the old or the new env. The
`name value` form is silently ignored by libubootenv 0.3.2, so it is never used.
"""

from __future__ import annotations

import shlex
import subprocess

from ..errors import BootEnvError
from ..slots import Slot
from .base import check_values, parse_lines, verify_written
from .mender import MenderEnv

NAME = "uboot"


class UBootEnv(MenderEnv):
    """Args:
    slots: (A, B).
    fw_env_config: passed as `-c` to both tools; None uses /etc/fw_env.config.
    get_cmd / set_cmd: replace `fw_printenv` / `fw_setenv` (mender's BootUtilities*
        keys); `-c` is not added to them, the wrapper knows its config.
    """

    name = NAME

    def __init__(
        self,
        slots: tuple[Slot, Slot],
        fw_env_config: str | None = None,
        get_cmd: str | None = None,
        set_cmd: str | None = None,
    ) -> None:
        super().__init__(slots)
        cfg = ["-c", fw_env_config] if fw_env_config else []
        self._get = shlex.split(get_cmd) if get_cmd else ["fw_printenv", *cfg]
        self._set = shlex.split(set_cmd) if set_cmd else ["fw_setenv", *cfg]

    def read(self) -> dict[str, str]:
        out = _run(self._get, None)
        env = parse_lines(out)
        # mender's canary: a build that expects the env to have been saved by
        # U-Boot, but reads an env without the canary, is looking at the wrong place
        if (
            env.get("mender_check_saveenv_canary") == "1"
            and env.get("mender_saveenv_canary") != "1"
        ):
            raise BootEnvError(
                f"{NAME}: mender_saveenv_canary is not 1: fw_env.config does not match"
                " where U-Boot keeps its env"
            )
        return env

    def write(self, values: dict[str, str]) -> None:
        check_values(NAME, values)
        script = "".join(f"{name}={value}\n" for name, value in values.items())
        _run([*self._set, "-s", "-"], script)
        verify_written(NAME, values, self.read())


def _run(cmd: list[str], stdin: str | None) -> str:
    try:
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise BootEnvError(f"{NAME}: {cmd[0]} not found (install libubootenv-tool)") from None
    except subprocess.TimeoutExpired:
        raise BootEnvError(f"{NAME}: {cmd[0]} did not finish in 60 s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines()
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        raise BootEnvError(f"{NAME}: {shlex.join(cmd)} failed: {detail}")
    return proc.stdout
