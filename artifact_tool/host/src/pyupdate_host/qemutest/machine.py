"""A small labgrid-style vocabulary for the QEMU tests.

Resources are facts (`DiskImage`), drivers act (`QemuDriver` powers the
machine and owns its serial console, `ShellDriver` runs commands on it), and
`BootStrategy` reaches a state one step at a time: off -> uboot -> shell. A
strategy that failed once is broken and refuses to continue, so a test never
runs on half a boot.
"""

from __future__ import annotations

import enum
import os
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pexpect

from pyupdate_host.image.board import Board

PROMPT = "PYU-SHELL# "
# Our test images log root in on the console by themselves (this prompt); a
# product image shows a getty's login prompt instead, and the strategy logs in.
LOGIN_PROMPT = r"root@pyupdate:\S*# "
GETTY_PROMPT = r"\S+ login: "
PASSWORD_PROMPT = r"[Pp]assword: "
LOGIN_REFUSED = r"Login incorrect"
# Any shell's prompt right after a login: the shell driver then sets its own.
SHELL_PROMPT = r"[#$] $"
BOOT_TIMEOUT = 240.0
BOOT_SCRIPT = "=== pyupdate boot.scr start"
# systemd's first shutdown line; ANSI colour codes sit inside it on the console.
SHUTDOWN = r"Stopped target\S* \S*graphical\.target"

GUEST_HOST_IP = "10.0.2.100"
RELAY = Path(__file__).resolve().parent / "relay.py"  # run as a script by QEMU


def accel() -> str:
    """TCG unless $PYUPDATE_QEMU_ACCEL says otherwise: /dev/kvm may exist and still not
    run U-Boot (as on the CI machines), and TCG timings are the ones the budget is for."""
    return os.environ.get("PYUPDATE_QEMU_ACCEL", "tcg")


@dataclass(frozen=True, slots=True)
class DiskImage:
    """Args: path (raw disk the machine boots from), extra (more raw disks, read-only)."""

    path: Path
    extra: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        for p in (self.path, *self.extra):
            if not p.is_file():
                raise FileNotFoundError(p)


class PowerProtocol(Protocol):
    def on(self) -> None: ...
    def off(self) -> None: ...


class ConsoleProtocol(Protocol):
    def expect(self, pattern: str | list[str], timeout: float) -> int: ...
    def sendline(self, line: str) -> None: ...


@dataclass
class Watchdog:
    """The board's reset supervisor, as an external watchdog on a real board.

    Armed at power-on until the boot script runs, and from the first shutdown
    line until the machine resets. When a window passes, the machine is
    power-cycled and the event is kept in `resets` (with the console's last
    lines) for the test report: a hang in firmware or in the guest's shutdown
    costs a reset, never a silent pass and never a test lost to the emulator.
    Not armed while the guest runs: a hung update or a stuck agent still fails.
    """

    # Cold boot to the boot script takes 1-5 s and a clean shutdown 3-10 s under TCG;
    # the shutdown window is longer than systemd's own 90 s stop-job timeout.
    firmware_window: float = 60.0
    shutdown_window: float = 150.0
    # A hang now and then is the emulator; every boot hanging is the image (a wrong
    # firmware, machine or CPU): give up after this many resets in a row.
    max_resets_in_a_row: int = 3
    resets: list[str] = field(default_factory=list)
    in_a_row: int = 0
    deadline: float | None = None
    window: float = 0.0
    reason: str = ""

    def arm_firmware(self) -> None:
        self._arm(self.firmware_window, "U-Boot did not reach the boot script")

    def arm_shutdown(self) -> None:
        self._arm(self.shutdown_window, "the guest's shutdown did not end in a reset")

    def _arm(self, window: float, reason: str) -> None:
        self.deadline, self.window, self.reason = time.monotonic() + window, window, reason

    def disarm(self) -> None:
        self.deadline = None

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass
class QemuDriver:
    """Power and serial console of one QEMU machine. `off()` is a power cut (SIGKILL).

    A guest reset (a panic with `panic=5`, `reboot`, U-Boot's `reset`) is a power cycle:
    QEMU runs with `-no-reboot`, exits on the reset, and `expect()` starts it again, so
    every boot is a cold boot and lands in U-Boot as on a board whose reset line cuts
    power. Warm resets are not used because the x86 U-Boot under TCG hangs now and then
    right after "Loading Environment" following one (seen in CI with one and two vCPUs).

    Args: board (qemu binary, machine, cpu, memory, U-Boot binary), disk, log (console transcript).
    """

    board: Board
    disk: DiskImage
    log: Path
    # One vCPU: TCG boots are only ~10% slower than with two, and the host keeps a core.
    smp: int = 1
    forwards: dict[int, int] = field(default_factory=dict)
    process: pexpect.spawn | None = field(default=None, init=False)
    watchdog: Watchdog = field(default_factory=Watchdog, init=False)

    def argv(self) -> list[str]:
        q = self.board.qemu
        args = [q.binary, "-M", q.machine, "-accel", accel(), "-smp", str(self.smp), "-no-reboot"]
        args += ["-m", str(q.memory_mib), "-nographic", "-bios", self.board.uboot.binary]
        if q.cpu:
            args += ["-cpu", q.cpu]
        # QEMU's default on a full host disk (werror=enospc) pauses the guest without a word:
        # the console just stops. `report` hands the guest an I/O error it prints instead.
        args += ["-drive", f"file={self.disk.path},format=raw,if={q.disk_interface},"
                 "werror=report,rerror=report"]  # fmt: skip
        for extra in self.disk.extra:
            args += ["-drive", f"file={extra},format=raw,if={q.disk_interface},readonly=on"]
        # Isolated user networking: the guest reaches nothing but the host ports forwarded
        # here, at 10.0.2.100:<guest port> -> 127.0.0.1:<host port>. A `tcp:` chardev
        # would carry one connection for the machine's whole life; `cmd:` runs a relay
        # per connection (relay.py), which a daemon that polls (and reconnects) needs.
        nic = "user,model=virtio-net-pci,restrict=on"
        for guest_port, host_port in self.forwards.items():
            relay = f"{sys.executable} {RELAY} {host_port}"
            nic += f",guestfwd=tcp:{GUEST_HOST_IP}:{guest_port}-cmd:{relay}"
        args += ["-nic", nic]
        return args

    def on(self) -> None:
        if self.process is not None and self.process.isalive():
            return
        argv = self.argv()
        self.process = pexpect.spawn(
            argv[0], argv[1:], encoding="utf-8", codec_errors="replace", timeout=BOOT_TIMEOUT
        )
        self.process.logfile_read = self.log.open("a", buffering=1)
        self.process.logfile_read.write(f"\n===== power on: {shlex.join(argv)}\n")
        self.watchdog.arm_firmware()

    def off(self) -> None:
        """Cut the power: no shutdown, no sync, the disk image keeps what reached it."""
        if self.process is None:
            return
        if self.process.isalive():
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.close(force=True)
        self.process.logfile_read.close()  # flushes a last line without a newline (a prompt)
        self.process = None
        self.watchdog.disarm()

    def expect(self, pattern: str | list[str], timeout: float = BOOT_TIMEOUT) -> int:
        """Wait for one of `pattern` (regexes); resets are power cycles, the watchdog watches."""
        wanted = [pattern] if isinstance(pattern, str) else list(pattern)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None, "machine is off"
            watch = self.watchdog.deadline
            until = deadline if watch is None else min(deadline, watch)
            try:
                index = self.process.expect(
                    [*wanted, re.escape(BOOT_SCRIPT), SHUTDOWN],
                    timeout=max(until - time.monotonic(), 0),
                )
            except pexpect.TIMEOUT:
                if not self.watchdog.expired():
                    raise AssertionError(
                        f"console: no {pattern!r} within {timeout:.0f} s; {self.host_disk()}; "
                        f"last lines:\n{self.tail()}"
                    ) from None
                deadline += self._watchdog_reset()
                continue
            except pexpect.EOF:
                self._power_cycle(pattern)
                continue
            if BOOT_SCRIPT in str(self.process.after):
                self.watchdog.disarm()
                self.watchdog.in_a_row = 0
            elif index == len(wanted) + 1:
                self.watchdog.arm_shutdown()
            if index < len(wanted):
                return index

    def _watchdog_reset(self) -> float:
        """Power-cycle a hung machine; returns the window it was given, to add to the wait."""
        window = self.watchdog.window
        self.watchdog.resets.append(f"{self.watchdog.reason}; last lines:\n{self.tail(15)}")
        self.watchdog.in_a_row += 1
        if self.watchdog.in_a_row > self.watchdog.max_resets_in_a_row:
            raise AssertionError(
                f"console: {self.watchdog.reason}, {self.watchdog.in_a_row} power-ons in a row"
                f" (check the firmware, machine and CPU: {shlex.join(self.argv()[:9])}...);"
                f" last lines:\n{self.tail(15)}"
            )
        self.off()
        self.on()
        return window

    def _power_cycle(self, pattern: str | list[str]) -> None:
        """QEMU exited: a guest reset under -no-reboot. Anything but exit 0 is a QEMU failure."""
        assert self.process is not None
        self.process.close()
        self.process.logfile_read.close()
        status, signal_number = self.process.exitstatus, self.process.signalstatus
        self.process = None
        if status != 0:
            how = f"exit {status}" if signal_number is None else f"signal {signal_number}"
            raise AssertionError(
                f"console: QEMU ended ({how}) while waiting for {pattern!r}; {self.host_disk()}; "
                f"last lines:\n{self.tail()}"
            )
        self.on()

    def tail(self, lines: int = 40) -> str:
        """The end of the console transcript: CI keeps the test output, not the log files."""
        try:
            text = self.log.read_bytes().decode(errors="replace")  # keeps \r\r\n one line
        except OSError:
            return "(no console log)"
        return "\n".join(text.replace("\r", "").splitlines()[-lines:])

    def host_disk(self) -> str:
        """Free space where the disk image lives: a full host disk looks like a hung guest."""
        st = os.statvfs(self.disk.path.parent)
        return f"host disk: {st.f_bavail * st.f_frsize >> 20} MiB free at {self.disk.path.parent}"

    def sendline(self, line: str) -> None:
        assert self.process is not None, "machine is off"
        self.process.sendline(line)

    @property
    def before(self) -> str:
        assert self.process is not None
        return self.process.before or ""


@dataclass
class ShellDriver:
    """Runs commands on the serial root shell; output and exit code come back framed by markers."""

    console: QemuDriver
    counter: int = 0

    def prepare(self) -> None:
        # A fixed prompt and no echo games: every command's output is cut out exactly.
        # Kernel messages share the serial line and would land inside command output
        # ("hrtimer: interrupt took ..."): keep only emergencies on the console.
        self.console.sendline(f"dmesg -n 1; stty -echo; export PS1='{PROMPT}'; export TERM=dumb")
        self.console.expect(PROMPT, timeout=60)

    def run(self, cmd: str, timeout: float = 300.0) -> tuple[int, str]:
        self.counter += 1
        tag = f"PYU{self.counter:04d}"
        self.console.sendline(f"echo {tag}-BEGIN; {cmd}; echo {tag}-END $?")
        self.console.expect(f"{tag}-BEGIN\r*\n", timeout=60)
        self.console.expect(rf"{tag}-END (\d+)\r*\n", timeout=timeout)
        out = self.console.before.replace("\r", "")
        assert self.console.process is not None
        rc = int(self.console.process.match.group(1))
        self.console.expect(PROMPT, timeout=30)
        return rc, out

    def check(self, cmd: str, timeout: float = 300.0) -> str:
        rc, out = self.run(cmd, timeout)
        if rc != 0:
            raise AssertionError(f"guest: {cmd!r} exited {rc}:\n{out}")
        return out


class State(enum.Enum):
    OFF = 0
    UBOOT = 1
    SHELL = 2
    BROKEN = 99


@dataclass
class BootStrategy:
    """off -> uboot (boot.scr runs) -> shell (root prompt). Records boot timings."""

    power: QemuDriver
    shell: ShellDriver
    user: str = "root"
    password: str | None = None
    state: State = State.OFF
    boot_seconds: list[float] = field(default_factory=list)
    _powered_at: float = 0.0

    def transition(self, target: State) -> None:
        if self.state is State.BROKEN:
            raise AssertionError("strategy is broken after an earlier failure")
        if target is State.OFF:
            self.power.off()
            self.state = State.OFF
            return
        try:
            while self.state.value < target.value:
                self._step()
        except BaseException:
            self.state = State.BROKEN
            raise

    def _step(self) -> None:
        if self.state is State.OFF:
            self._powered_at = time.monotonic()
            self.power.on()
            self.power.expect(BOOT_SCRIPT, timeout=self.power.watchdog.firmware_window + 30)
            self.state = State.UBOOT
        elif self.state is State.UBOOT:
            self.await_shell()

    def await_shell(self) -> None:
        if self.power.expect([LOGIN_PROMPT, GETTY_PROMPT]) == 1:
            self._log_in()
        self.shell.prepare()
        self.boot_seconds.append(time.monotonic() - self._powered_at)
        self.state = State.SHELL

    def _log_in(self) -> None:
        self.power.sendline(self.user)
        wanted = [PASSWORD_PROMPT, LOGIN_PROMPT, SHELL_PROMPT, LOGIN_REFUSED]
        index = self.power.expect(wanted, timeout=60)
        if index == 0:
            if self.password is None:
                raise AssertionError(
                    f"console: logging in as {self.user} asks for a password (--login USER:PASSWORD)"
                )
            self.power.sendline(self.password)
            index = self.power.expect(wanted[1:], timeout=60) + 1
        if index == 3:
            raise AssertionError(f"console: login as {self.user} refused (Login incorrect)")

    def reboot(self) -> None:
        """A clean reboot from the shell; the next boot.scr marks the UBOOT state."""
        self.power.sendline("reboot")
        self._powered_at = time.monotonic()
        watchdog = self.power.watchdog
        self.power.expect(BOOT_SCRIPT, timeout=watchdog.shutdown_window + watchdog.firmware_window)
        self.state = State.UBOOT

    def boot_log(self, pattern: str, timeout: float = BOOT_TIMEOUT) -> str:
        """Wait for a U-Boot/kernel line during the current boot and return it."""
        self.power.expect(pattern, timeout=timeout)
        assert self.power.process is not None
        return self.power.process.after if isinstance(self.power.process.after, str) else ""

    def power_cut(self) -> None:
        self.power.off()
        self.state = State.OFF


def ab_line(text: str) -> list[str]:
    return re.findall(r"AB: .*", text)
