// Charts as SVG made here: no library, no inline style (the CSP forbids it), colours
// from style.css by class. Each chart carries its numbers as text too, for screen
// readers and for reading without the picture.
import { el } from "./lib.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

// A horizontal bar filled by segments [{value, cls}] out of `total` (100 wide).
export function stackedBar(segments, total, label) {
  const box = svg("svg", { viewBox: "0 0 100 10", preserveAspectRatio: "none", class: "bar", role: "img" });
  box.setAttribute("aria-label", label);
  box.append(svg("title"));
  box.firstChild.textContent = label;
  box.append(svg("rect", { x: 0, y: 0, width: 100, height: 10, class: "bar-track" }));
  let x = 0;
  for (const { value, cls } of segments) {
    if (!value || !total) continue;
    const width = Math.min(100 - x, (100 * value) / total);
    box.append(svg("rect", { x: x.toFixed(3), y: 0, width: width.toFixed(3), height: 10, class: cls }));
    x += width;
  }
  return box;
}

// One bar per row [{label, value, href?, cls?}], scaled to the largest: a <ul> whose
// items read "label, bar, number"; the label links where there is more to see.
export function barChart(rows, name) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const total = rows.reduce((sum, r) => sum + r.value, 0);
  const list = el("ul", { className: "bar-chart", "aria-label": name });
  for (const row of rows) {
    const share = total ? Math.round((100 * row.value) / total) : 0;
    const label = row.href ? el("a", { href: row.href }, row.label) : el("span", {}, row.label);
    const text = `${row.label}: ${row.value} (${share}%)`;
    list.append(el("li", { dataset: { label: row.label } },
      el("span", { className: "bar-label" }, label),
      stackedBar([{ value: row.value, cls: row.cls || "bar-fill" }], max, text),
      el("span", { className: "bar-value" }, `${row.value}`, el("small", {}, ` ${share}%`))));
  }
  return list;
}

// Device statistics (Mender's names) in four groups: succeeded, failed, busy, waiting.
export function tally(statistics) {
  const s = statistics || {};
  const sum = (...names) => names.reduce((n, k) => n + (s[k] || 0), 0);
  return {
    success: sum("success", "already-installed"),
    failure: sum("failure"),
    busy: sum("downloading", "installing", "rebooting", "pause_before_installing",
      "pause_before_committing", "pause_before_rebooting"),
    pending: sum("pending"),
    other: sum("noartifact", "aborted", "decommissioned", "skipped"),
  };
}

// A phase's bar: succeeded, failed and handed-but-not-final devices of its size.
export function phaseBar(phase) {
  const busy = Math.max(0, phase.device_count - phase.successes - phase.failures);
  const rate = phase.devices ? Math.round((100 * phase.failures) / phase.devices) : 0;
  const text = `phase ${phase.number}: ${phase.successes} succeeded, ${phase.failures} failed `
    + `(${rate}%), ${busy} in progress, of ${phase.devices}`;
  return {
    bar: stackedBar([
      { value: phase.successes, cls: "bar-success" },
      { value: phase.failures, cls: "bar-failure" },
      { value: busy, cls: "bar-busy" },
    ], phase.devices, text),
    text,
    rate,
  };
}

// A deployment's bar without phases, from its statistics.
export function deploymentBar(dep) {
  const t = tally(dep.statistics);
  const total = Math.max(dep.device_count, t.success + t.failure + t.busy + t.pending + t.other);
  const rate = total ? Math.round((100 * t.failure) / total) : 0;
  const text = `${t.success} succeeded, ${t.failure} failed (${rate}%), ${t.busy} in progress, `
    + `${t.pending} waiting, of ${total}`;
  return {
    bar: stackedBar([
      { value: t.success, cls: "bar-success" },
      { value: t.failure, cls: "bar-failure" },
      { value: t.busy, cls: "bar-busy" },
    ], total, text),
    text,
    rate,
  };
}
