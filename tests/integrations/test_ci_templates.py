"""ci/templates: the copy-paste CI for teams using meta-pyupdate or buildroot-ext.

Both templates parse, their jobs hang together (GitLab: stages and needs;
GitHub: triggers, runners, steps, needs), each test job runs
`pyupdate-qemu-test` exactly once with only the options of its synopsis
(docs/qemu-test.md), and the tool's own parser accepts every such line.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from integrations_helpers import REPO

TEMPLATES = REPO / "ci" / "templates"
GITLAB = TEMPLATES / "gitlab-ci.yml"
GITHUB = TEMPLATES / "github-actions.yml"
TOOL = "pyupdate-qemu-test"

# The synopsis of pyupdate-qemu-test: option -> whether it takes a value.
OPTIONS = {
    "--board": True,
    "--qemuboot": True,
    "--images": True,
    "--disk": True,
    "--firmware": True,
    "--update": True,
    "--broken": True,
    "--signing-key": True,
    "--verify-key": True,
    "--scenario": True,
    "--skip": True,
    "--list": False,
    "--junit": True,
    "--logs": True,
    "--budget": True,
    "--accel": True,
    "--quiet": False,
}
SOURCES = {"--board", "--qemuboot", "--images"}  # exactly one says what to boot

# Top-level keys of a .gitlab-ci.yml that are not jobs (GitLab's keyword reference).
GITLAB_KEYWORDS = {
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "image",
    "services",
    "cache",
    "before_script",
    "after_script",
}


def load(path: Path) -> dict[Any, Any]:
    doc = yaml.safe_load(path.read_text())
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def gitlab_jobs(doc: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """Jobs only: hidden keys (".name", YAML anchors and templates) are not run."""
    return {k: v for k, v in doc.items() if k not in GITLAB_KEYWORDS and not k.startswith(".")}


def github_workflow_on(doc: dict[Any, Any]) -> Any:
    # PyYAML reads YAML 1.1, where a bare `on` is the boolean True; GitHub reads it as a key.
    return doc.get("on", doc.get(True))


def flatten(items: Any) -> list[str]:
    """GitLab flattens nested script lists (a `- *anchor` inside `script:`)."""
    if isinstance(items, str):
        return [items]
    return [line for item in items or [] for line in flatten(item)]


def gitlab_scripts(job: dict[str, Any]) -> list[str]:
    return [s for key in ("before_script", "script", "after_script") for s in flatten(job.get(key))]


def github_scripts(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job.get("steps", []) if "run" in step]


def logical_lines(script: str) -> list[str]:
    """Shell lines with backslash continuations joined, as the shell reads them."""
    lines, pending = [], ""
    for raw in script.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def tool_commands(scripts: list[str]) -> list[str]:
    return [
        line.strip()
        for script in scripts
        for line in logical_lines(script)
        if line.split()[:1] == [TOOL]
    ]


def substitute(command: str) -> str:
    """CI and shell variables become placeholder paths, so the line is plain words."""
    command = re.sub(
        r"\$\{\{\s*(.*?)\s*\}\}",
        lambda m: "/placeholder/" + re.sub(r"\W+", "_", m.group(1)),
        command,
    )
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", r"/placeholder/\1", command)


def template_commands() -> list[tuple[str, str, str]]:
    """(template, job, argv as one line with variables substituted) for every tool line."""
    found = []
    for name, jobs in (
        (GITLAB.name, {k: gitlab_scripts(v) for k, v in gitlab_jobs(load(GITLAB)).items()}),
        (GITHUB.name, {k: github_scripts(v) for k, v in load(GITHUB)["jobs"].items()}),
    ):
        for job, scripts in jobs.items():
            found += [(name, job, substitute(cmd)) for cmd in tool_commands(scripts)]
    return found


COMMANDS = template_commands()
COMMAND_IDS = [f"{template}:{job}" for template, job, _ in COMMANDS]


def parse_options(argv: list[str]) -> tuple[list[tuple[str, str | None]], list[str]]:
    """(option, value) pairs and positional words, read with the synopsis's arities."""
    options: list[tuple[str, str | None]] = []
    positional: list[str] = []
    words = iter(argv)
    for word in words:
        if not word.startswith("--"):
            positional.append(word)
            continue
        name, eq, value = word.partition("=")
        if eq or not OPTIONS.get(name):
            options.append((name, value if eq else None))
        else:
            options.append((name, next(words, None)))
    return options, positional


@pytest.mark.parametrize("path", [GITLAB, GITHUB], ids=lambda p: p.name)
def test_template_parses_as_yaml(path: Path):
    assert load(path)


@pytest.mark.parametrize("path", [GITLAB, GITHUB], ids=lambda p: p.name)
def test_template_holds_no_key_material(path: Path):
    """Keys come from CI variables or secrets, written to files at run time."""
    assert "PRIVATE KEY-----" not in path.read_text()


def test_gitlab_jobs_have_a_script_and_a_declared_stage():
    doc = load(GITLAB)
    stages = doc["stages"]
    jobs = gitlab_jobs(doc)
    assert jobs
    for name, job in jobs.items():
        assert flatten(job.get("script")), f"{name}: no script"
        assert job.get("stage") in stages, f"{name}: stage {job.get('stage')!r} not in {stages}"


def test_gitlab_needs_name_jobs_of_an_earlier_stage():
    doc = load(GITLAB)
    stages = doc["stages"]
    jobs = gitlab_jobs(doc)
    for name, job in jobs.items():
        for need in job.get("needs", []):
            needed = need["job"] if isinstance(need, dict) else need
            assert needed in jobs, f"{name}: needs unknown job {needed!r}"
            assert stages.index(jobs[needed]["stage"]) < stages.index(job["stage"]), name


def test_github_workflow_has_triggers_and_jobs():
    doc = load(GITHUB)
    assert github_workflow_on(doc), "no `on:` triggers"
    assert doc.get("jobs"), "no jobs"


def test_github_jobs_have_a_runner_and_steps():
    for name, job in load(GITHUB)["jobs"].items():
        assert job.get("runs-on"), f"{name}: no runs-on"
        assert job.get("steps"), f"{name}: no steps"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: a step needs uses or run: {step}"


def test_github_needs_name_existing_jobs():
    jobs = load(GITHUB)["jobs"]
    for name, job in jobs.items():
        needs = job.get("needs", [])
        for needed in [needs] if isinstance(needs, str) else needs:
            assert needed in jobs, f"{name}: needs unknown job {needed!r}"


def test_each_template_tests_both_builds_with_one_command_per_job():
    for template in (GITLAB.name, GITHUB.name):
        jobs = [job for t, job, _ in COMMANDS if t == template]
        assert len(jobs) == 2, f"{template}: {TOOL} in {jobs}, want one yocto and one buildroot job"
        assert len(set(jobs)) == len(jobs), f"{template}: a job runs {TOOL} twice: {jobs}"
        for build in ("yocto", "buildroot"):
            assert any(build in job for job in jobs), f"{template}: no {build} test job"


def test_test_jobs_depend_on_their_build():
    gitlab = gitlab_jobs(load(GITLAB))
    github = load(GITHUB)["jobs"]
    for template, job, _ in COMMANDS:
        if template == GITLAB.name:
            needs = [n["job"] if isinstance(n, dict) else n for n in gitlab[job].get("needs", [])]
        else:
            raw = github[job].get("needs", [])
            needs = [raw] if isinstance(raw, str) else raw
        build = "yocto" if "yocto" in job else "buildroot"
        assert any(build in n for n in needs), f"{template}: {job} does not need the {build} build"


def test_gitlab_publishes_the_junit_report_even_on_failure():
    jobs = gitlab_jobs(load(GITLAB))
    for template, job, command in COMMANDS:
        if template != GITLAB.name:
            continue
        junit = dict(parse_options(shlex.split(command)[1:])[0]).get("--junit")
        artifacts = jobs[job].get("artifacts", {})
        assert junit and artifacts.get("reports", {}).get("junit") == junit, job
        assert artifacts.get("when") == "always", f"{job}: the report of a failed run is lost"


def test_github_uploads_the_junit_report_even_on_failure():
    jobs = load(GITHUB)["jobs"]
    for template, job, command in COMMANDS:
        if template != GITHUB.name:
            continue
        junit = dict(parse_options(shlex.split(command)[1:])[0]).get("--junit")
        uploads = [
            s
            for s in jobs[job]["steps"]
            if s.get("uses", "").startswith("actions/upload-artifact@")
            and "always()" in str(s.get("if", ""))
        ]
        assert junit and any(junit in s["with"]["path"] for s in uploads), job


@pytest.mark.parametrize(("template", "job", "command"), COMMANDS, ids=COMMAND_IDS)
def test_qemu_test_line_uses_only_the_synopsis(template: str, job: str, command: str):
    """Checked without the tool: the options are a subset of the synopsis, with its arities."""
    options, positional = parse_options(shlex.split(command)[1:])
    names = [name for name, _ in options]
    assert set(names) <= set(OPTIONS), f"unknown options: {sorted(set(names) - set(OPTIONS))}"
    assert not positional, f"positional words: {positional}"
    assert len(names) == len(set(names)), f"an option given twice: {names}"
    assert len(SOURCES & set(names)) == 1, "exactly one of --board, --qemuboot, --images"
    assert "--update" in names
    if "--board" in names:
        assert {"--disk", "--firmware"} <= set(names), "--board needs --disk and --firmware"
    for name, value in options:
        if OPTIONS[name]:
            assert value and not value.startswith("--"), f"{name} without a value"
        else:
            assert value is None, f"{name} takes no value"
    values = dict(options)
    assert values.get("--accel", "tcg") in ("tcg", "kvm"), f"--accel {values['--accel']}"
    budget = str(values.get("--budget", "60"))
    assert budget.isdigit() and int(budget) > 0, f"--budget {budget}: whole minutes, more than 0"


@pytest.mark.parametrize(("template", "job", "command"), COMMANDS, ids=COMMAND_IDS)
def test_qemu_test_line_parses_with_the_tools_parser(template: str, job: str, command: str):
    # Imported here: the template checks above must not depend on the tool being installed.
    from pyupdate_host.qemutest.cli import build_parser

    try:
        args = build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exc:  # argparse has printed why on stderr
        pytest.fail(f"{template}: {job}: the parser refused (exit {exc.code}): {command}")
    assert args.update
