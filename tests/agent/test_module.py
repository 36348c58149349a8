"""payloads/module.py: the Update Module v3 protocol (docs/update-module.md)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from pyupdate_agent.errors import ModuleError
from pyupdate_agent.payloads.module import ModuleContext, ModuleInstaller, find_module, write_tree

CTX = ModuleContext(
    current_artifact_name="base-0",
    current_artifact_group="",
    current_device_type="test-device",
    artifact_name="m-1",
    artifact_group="",
    payload_type="probe",
    header_info={"payloads": [{"type": "probe"}], "artifact_provides": {"artifact_name": "m-1"}},
    type_info={"type": "probe"},
    meta_data=None,
)

STREAMING = """#!/bin/sh
# reads every stream and copies it to $2/../got/<name>
state=$1; tree=$2
case $state in
  Download)
    mkdir -p "$tree/../got"
    while true; do
      next=$(cat stream-next)
      [ -z "$next" ] && break
      cat "$next" > "$tree/../got/$(basename $next)"
    done ;;
  SupportsRollback) echo "$ANSWER" ;;
  NeedsArtifactReboot) echo "$ANSWER" ;;
  ArtifactInstall) echo installing; echo warn >&2 ;;
esac
exit 0
"""


def module(tmp_path: Path, body: str, name: str = "probe") -> Path:
    d = tmp_path / "modules"
    d.mkdir(exist_ok=True)
    path = d / name
    path.write_text(body)
    path.chmod(0o755)
    return path


def installer(tmp_path: Path, body: str, timeout: float = 30, grace: float = 1) -> ModuleInstaller:
    tree = tmp_path / "data" / "payloads" / "0000" / "tree"
    write_tree(tree, CTX)
    return ModuleInstaller(module(tmp_path, body), tree, timeout, grace)


def feed(inst: ModuleInstaller, files: dict[str, bytes]) -> None:
    inst.begin_download()
    try:
        for name, body in files.items():
            w = inst.open_file(None, name, len(body))
            for i in range(0, len(body), 65536):
                w.write(body[i : i + 65536])
            w.finish()
        inst.end_download()
    except BaseException:
        inst.abort_download()
        raise


def test_file_tree_layout_and_modes(tmp_path: Path):
    tree = tmp_path / "p" / "0000" / "tree"
    write_tree(tree, CTX)
    assert (tree / "version").read_text() == "3"
    assert (tree / "current_artifact_name").read_text() == "base-0"
    assert (tree / "header" / "payload_type").read_text() == "probe"
    assert (tree / "header" / "meta-data").read_text() == "null"
    assert (
        json.loads((tree / "header" / "header-info").read_text())["payloads"][0]["type"] == "probe"
    )
    assert stat.S_IMODE(tree.stat().st_mode) == 0o700
    assert stat.S_IMODE((tree / "version").stat().st_mode) == 0o600


def test_streams_are_fed_through_fifos_in_order(tmp_path: Path):
    inst = installer(tmp_path, STREAMING)
    files = {"p1.bin": os.urandom(300_000), "p2.dat": b"small"}
    feed(inst, files)
    for name, body in files.items():
        assert (tmp_path / "data" / "payloads" / "0000" / "got" / name).read_bytes() == body
    assert not (inst.tree / "files").exists()


def test_module_that_exits_gets_files_instead(tmp_path: Path):
    inst = installer(tmp_path, "#!/bin/sh\nexit 0\n")
    feed(inst, {"a.txt": b"A" * 100_000, "b.txt": b"B"})
    assert (inst.tree / "files" / "a.txt").read_bytes() == b"A" * 100_000
    assert stat.S_IMODE((inst.tree / "files" / "b.txt").stat().st_mode) == 0o600
    assert not (inst.tree / "stream-next").exists()
    assert not (inst.tree / "streams").exists()


@pytest.mark.parametrize(
    ("answer", "rollback", "reboot"),
    [("", False, "No"), ("No", False, "No"), ("Yes", True, "Yes")],
)
def test_query_answers(tmp_path: Path, monkeypatch, answer, rollback, reboot):
    monkeypatch.setenv("ANSWER", answer)
    inst = installer(tmp_path, STREAMING)
    assert inst.supports_rollback() is rollback
    assert inst.needs_reboot() == reboot


def test_automatic_reboot_answer(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANSWER", "Automatic")
    assert installer(tmp_path, STREAMING).needs_reboot() == "Automatic"


def test_bad_query_answer_is_an_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ANSWER", "Maybe")
    with pytest.raises(ModuleError, match="answered 'Maybe'"):
        installer(tmp_path, STREAMING).supports_rollback()


def test_crash_during_download_is_an_error(tmp_path: Path):
    inst = installer(tmp_path, "#!/bin/sh\n[ $1 = Download ] && exit 9\nexit 0\n")
    with pytest.raises(ModuleError, match="Download failed with exit code 9"):
        feed(inst, {"a": b"x"})


def test_module_that_stops_reading_a_stream_fails(tmp_path: Path):
    body = "#!/bin/sh\n[ $1 = Download ] || exit 0\nn=$(cat stream-next)\nhead -c 10 $n >/dev/null\nexit 0\n"
    inst = installer(tmp_path, body)
    with pytest.raises(ModuleError):
        feed(inst, {"big": os.urandom(2 << 20)})


def test_hanging_module_is_killed_at_the_timeout(tmp_path: Path):
    inst = installer(
        tmp_path, "#!/bin/sh\n[ $1 = ArtifactInstall ] && sleep 60\nexit 0\n", timeout=1
    )
    with pytest.raises(ModuleError, match="ArtifactInstall timed out"):
        inst.install()


def test_module_ignoring_sigterm_gets_sigkill(tmp_path: Path):
    body = "#!/bin/sh\ntrap '' TERM\n[ $1 = ArtifactInstall ] && sleep 60\nexit 0\n"
    inst = installer(tmp_path, body, timeout=1, grace=1)
    with pytest.raises(ModuleError, match="timed out"):
        inst.install()


def test_hanging_download_is_killed(tmp_path: Path):
    body = "#!/bin/sh\n[ $1 = Download ] && exec sleep 60\nexit 0\n"
    inst = installer(tmp_path, body, timeout=1)
    with pytest.raises(ModuleError, match="Download timed out"):
        feed(inst, {"a": b"x"})


def test_a_module_that_exited_is_not_timed_out_while_its_files_are_written(tmp_path: Path):
    """Files mode: the module ends at once in Download; writing its files may take longer
    than ModuleTimeoutSeconds without that counting as the module's timeout."""
    inst = installer(tmp_path, "#!/bin/sh\nexit 0\n", timeout=0.5)
    inst.begin_download()
    writer = inst.open_file(None, "a", 3)
    time.sleep(1.0)  # past the timeout, the module long gone
    writer.write(b"abc")
    writer.finish()
    inst.end_download()
    assert (inst.tree / "files" / "a").read_bytes() == b"abc"


def test_cleanup_removes_the_tree(tmp_path: Path):
    inst = installer(tmp_path, "#!/bin/sh\nexit 0\n")
    inst.cleanup()
    assert not inst.tree.parent.exists()


def test_find_module_searches_dirs_in_order(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    second.mkdir()
    (second / "probe").write_text("#!/bin/sh\n")
    (second / "probe").chmod(0o755)
    first.mkdir()
    (first / "probe").mkdir()  # a directory is not a module
    assert find_module("probe", (str(first), str(second))) == second / "probe"
    with pytest.raises(ModuleError, match="no update module"):
        find_module("other", (str(first),))
    with pytest.raises(ModuleError, match="cannot name"):
        find_module("../x", (str(first),))
