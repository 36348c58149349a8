"""The run's results for CI (JUnit XML) and for people (a summary table).

The XML is the shape CI systems share (Jenkins' junit-10.xsd, which GitLab and
the GitHub test-report actions read): one <testsuite>, one <testcase> per
chosen scenario, <failure>/<error> carrying the message and the console's
last lines, <skipped> with the reason, <system-out> with the log's path.
"""

from __future__ import annotations

import platform
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from .runner import Result

# XML 1.0 forbids most control characters; a serial console produces them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text)


def junit_xml(results: list[Result], suite: str, properties: dict[str, str]) -> bytes:
    counts = {s: sum(r.status == s for r in results) for s in ("failed", "error", "skipped")}
    root = ET.Element("testsuites")
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(results)),
        failures=str(counts["failed"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
        time=f"{sum(r.seconds for r in results):.3f}",
        timestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=platform.node() or "localhost",
    )
    props = ET.SubElement(ts, "properties")
    for key, value in properties.items():
        ET.SubElement(props, "property", name=key, value=_clean(value))
    for r in results:
        case = ET.SubElement(ts, "testcase", classname=suite, name=r.name, time=f"{r.seconds:.3f}")
        first_line = _clean(r.message.splitlines()[0] if r.message else r.status)
        if r.status in ("failed", "error"):
            tag = "failure" if r.status == "failed" else "error"
            element = ET.SubElement(case, tag, message=first_line, type=tag)
            tail = f"\n--- console, last lines ---\n{r.console_tail}" if r.console_tail else ""
            element.text = _clean(r.message + tail)
        elif r.status == "skipped":
            ET.SubElement(case, "skipped", message=first_line)
        out = [f"console log: {r.log}"] if r.log else []
        out += [f"boot to shell: {s:.0f} s" for s in r.boots]
        out += [f"step: {n}" for n in r.notes]
        out += [f"watchdog reset: {w}" for w in r.watchdog_resets]
        if out:
            ET.SubElement(case, "system-out").text = _clean("\n".join(out))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def summary(results: list[Result], properties: dict[str, str]) -> str:
    lines = [f"{k}: {v}" for k, v in properties.items()]
    width = max([12, *(len(r.name) for r in results)])
    lines.append(f"{'scenario':<{width}} {'result':<8} {'time':>7}  boots to shell (s)")
    for r in results:
        boots = ", ".join(f"{s:.0f}" for s in r.boots) or "-"
        lines.append(f"{r.name:<{width}} {r.status:<8} {r.seconds:>6.0f}s  {boots}")
        if r.status != "passed" and r.message:
            lines.append(f"  {r.message.splitlines()[0]}")
        lines += [f"  watchdog reset: {w.splitlines()[0]}" for w in r.watchdog_resets]
    total = sum(r.seconds for r in results)
    passed = sum(r.status == "passed" for r in results)
    lines.append(f"{passed}/{len(results)} passed in {total:.0f} s")
    return "\n".join(lines) + "\n"


def write(path: Path, data: bytes | str) -> None:
    """Whole or not at all: a CI job never publishes half a report."""
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(data, str):
        tmp.write_text(data, encoding="utf-8")
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
