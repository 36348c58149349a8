"""log.py: JSON lines with fields, deployment logs named and rotated like mender's."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from pyupdate_agent.log import KEEP_LOGS, deployment_log, new_log_path


def test_deployment_log_gets_info_records_with_fields(tmp_path: Path):
    path = tmp_path / "deployments.0000.x.log"
    with deployment_log(path):
        logging.getLogger("pyupdate_agent.test").info("hello", extra={"state": "install"})
    logging.getLogger("pyupdate_agent.test").info("after")
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(entries) == 1
    assert entries[0]["message"] == "hello" and entries[0]["state"] == "install"
    assert entries[0]["level"] == "info"


def test_log_names_count_up_and_old_ones_are_dropped(tmp_path: Path):
    names = []
    for i in range(KEEP_LOGS + 2):
        path = new_log_path(tmp_path, f"id{i}")
        path.write_text("")
        names.append(path.name)
    assert names[0] == "deployments.0000.id0.log"
    assert names[-1] == f"deployments.{KEEP_LOGS + 1:04d}.id{KEEP_LOGS + 1}.log"
    assert len(list(tmp_path.glob("deployments.*.log"))) == KEEP_LOGS
