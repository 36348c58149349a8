"""provides.py: the store's provides win; else artifact_info; else `unknown`."""

from __future__ import annotations

from pathlib import Path

from pyupdate_agent.config import Config
from pyupdate_agent.provides import current_provides, format_provides, read_artifact_info
from pyupdate_agent.store import InFlight, Phase, Store


def test_unknown_without_store_or_artifact_info(tmp_path: Path):
    cfg = Config(artifact_info_files=(str(tmp_path / "none"),))
    assert current_provides(None, cfg) == {"artifact_name": "unknown"}


def test_first_existing_artifact_info_wins(tmp_path: Path):
    (tmp_path / "b").write_text("artifact_name=from-b\nartifact_group=g\n")
    cfg = Config(artifact_info_files=(str(tmp_path / "a"), str(tmp_path / "b")))
    assert current_provides(None, cfg) == {"artifact_name": "from-b", "artifact_group": "g"}
    (tmp_path / "a").write_text("# image\nartifact_name=from-a\n")
    assert read_artifact_info(cfg.artifact_info_files) == {"artifact_name": "from-a"}


def test_store_name_wins_over_artifact_info(tmp_path: Path):
    (tmp_path / "info").write_text("artifact_name=factory\n")
    cfg = Config(artifact_info_files=(str(tmp_path / "info"),))
    store = Store.open(tmp_path / "data")
    u = store.begin(
        InFlight("u", "r1", "rootfs-image", Phase.COMMIT, {"artifact_name": "r1"}, "/tmp/l")
    )
    store.finish(u, "success", "", {"artifact_name": "r1", "x.version": "1"})
    assert current_provides(store, cfg) == {"artifact_name": "r1", "x.version": "1"}


def test_format_is_sorted_key_value_lines():
    assert format_provides({"b": "2", "a": "1"}) == "a=1\nb=2\n"
