// Deployments: the paged list, and one deployment's page (phases with progress, paused
// state, resume / pause / abort for a release manager, the decision log, its devices).
import {
  $, API, Pager, RELEASE, api, apiPage, button, can, cell, el, enc, fillRows, link, mib, say,
  session, statusBadge, when,
} from "./lib.js";
import { deploymentBar, phaseBar } from "./charts.js";

const listPager = new Pager("deployment", 20, () => session.refresh());

export function setDeploymentFilter(status) {
  const select = $("deployment-status");
  if (status !== undefined && select.value !== status) {
    select.value = status;
    listPager.page = 1;
  }
}

export function targetText(dep) {
  if (dep.filter) return `dynamic group ${dep.filter.name}`;
  if (dep.target === "all") return "all accepted devices";
  if (dep.target.startsWith("group:")) return `static group ${dep.target.slice(6)}`;
  if (dep.target.startsWith("filter:")) return "dynamic group";
  return `${dep.device_count} chosen device${dep.device_count === 1 ? "" : "s"}`;
}

// Pause or Resume, and Abort: a release manager's, while the deployment is open.
function controls(parent, dep, reload) {
  if (dep.status === "finished" || !can(RELEASE)) return;
  const [label, status] = dep.paused ? ["Resume", "inprogress"] : ["Pause", "paused"];
  button(parent, label, async () => {
    await api("PUT", `${API.deployments}/${enc(dep.id)}/status`, { json: { status } });
    say(`Deployment ${dep.name} ${dep.paused ? "resumed" : "paused"}.`);
    await reload();
  });
  button(parent, "Abort", async () => {
    if (!confirm(`Abort deployment ${dep.name}? Devices not yet installing will not get it.`)) return;
    await api("PUT", `${API.deployments}/${enc(dep.id)}/status`, { json: { status: "aborted" } });
    say(`Deployment ${dep.name} aborted.`);
    await reload();
  }, "danger");
}

export async function showDeployments() {
  const status = $("deployment-status").value;
  const filter = status ? `&status=${enc(status)}` : "";
  let page = await apiPage(`${API.deployments}?${listPager.query}${filter}`);
  if (listPager.clamp(page.total)) page = await apiPage(`${API.deployments}?${listPager.query}${filter}`);
  $("new-rollout-link").hidden = !can(RELEASE);
  listPager.show(page.total, "deployment");
  fillRows("deployment-rows", page.items, "id", (row, dep) => {
    cell(row, link(`#deployment/${dep.id}`, dep.name));
    cell(row, dep.artifact_name);
    cell(row, targetText(dep));
    cell(row, when(dep.created));
    cell(row, statusBadge(dep.aborted ? "aborted" : dep.status));
    const { bar, text } = deploymentBar(dep);
    const counts = Object.entries(dep.statistics).filter(([, n]) => n).map(([s, n]) => `${s}: ${n}`);
    // phased: each phase's state, devices handed of its size, and its failures
    const phases = (dep.phases || []).map((p) =>
      `phase ${p.number} ${p.status} ${p.device_count}/${p.devices}${p.failures ? `, ${p.failures} failed` : ""}`);
    cell(row, el("div", { className: "progress" }, bar,
      el("small", { title: text }, [...counts, ...phases].join("; ") || "no devices yet")));
    controls(cell(row, "", "actions"), dep, showDeployments);
  }, status ? `No ${status} deployments.` : "No deployments yet.");
}

// --- one deployment ------------------------------------------------------------
let shownDeployment = null;
const devicePager = new Pager("detail", 50, () => session.refresh());

function threshold(t) {
  if (!t) return null;
  return t.percent !== null && t.percent !== undefined ? `${t.percent}%` : `${t.count} devices`;
}

function phaseSize(p, last) {
  if (p.batch_size !== null) return `${p.batch_size}%`;
  if (p.batch_count !== null) return `${p.batch_count} devices`;
  return last ? "the rest" : "";
}

// what the devices handed it were sent: full artifacts, deltas, deltas that fell back
function deliveryText(d) {
  if (!d || !(d.full + d.delta + d.fallback)) return null;
  const parts = [`${d.delta} delta`, `${d.full} full`];
  if (d.fallback) parts.push(`${d.fallback} fell back to full`);
  return `${parts.join(", ")}; ${mib(d.bytes_sent)} sent, ${mib(d.bytes_saved)} saved`;
}

const JOB_TEXT = {
  queued: "queued", running: "being made", done: "ready", not_smaller: "not smaller: full sent",
  failed: "failed", skipped: "not made",
};

// the deltas the server makes for it: from which image, and how that went
function deltaJobsText(jobs) {
  if (!jobs || !jobs.length) return null;
  return jobs.map((j) => {
    const size = j.delta_size !== null ? ` (${mib(j.delta_size)})` : "";
    const why = j.error ? `: ${j.error}` : "";
    return `from ${j.old_checksum.slice(0, 12)}: ${JOB_TEXT[j.status] || j.status}${size}${why}`;
  }).join("; ");
}

function sentText(device) {
  if (!device.delivery) return "";
  return `${device.delivery}, ${mib(device.bytes_sent)}`;
}

function phaseStart(p) {
  const parts = [];
  if (p.start_when_healthy) parts.push(`when phase ${p.number - 1} is healthy`);
  if (p.start_ts) parts.push(`not before ${when(p.start_ts)}`);
  return parts.join(", ") || "at once";
}

export async function showDeployment(depId) {
  if (depId !== shownDeployment) {
    shownDeployment = depId;
    devicePager.page = 1;
    $("detail-log").hidden = true;
  }
  const dep = await api("GET", `${API.deployments}/${enc(depId)}`);
  const path = `${API.deployments}/${enc(depId)}/devices/list`;
  let devices = await apiPage(`${path}?${devicePager.query}`);
  if (devicePager.clamp(devices.total)) devices = await apiPage(`${path}?${devicePager.query}`);

  $("detail-title").textContent = `${dep.name}: ${dep.artifact_name}`;
  const status = dep.aborted ? "aborted" : dep.status;
  $("detail-status").replaceChildren(statusBadge(status));
  $("detail-paused").hidden = !dep.paused || dep.status === "finished";
  const lastPause = [...dep.events].reverse().find((e) => e.kind === "paused");
  $("detail-paused-why").textContent = lastPause ? lastPause.message : "";
  const facts = [
    ["Artifact", dep.artifact_name],
    ["Target", targetText(dep)],
    ["Devices", `${dep.device_count}${dep.max_devices ? ` (at most ${dep.max_devices})` : ""}`],
    ["Created", when(dep.created)],
    ["Start", dep.start_ts ? when(dep.start_ts) : null],
    ["End", dep.end_ts ? when(dep.end_ts) : null],
    ["Install window", dep.install_window ? `${dep.install_window} (device local time)` : null],
    ["Failure threshold", dep.failure_threshold ? `${threshold(dep.failure_threshold)} of a phase: ${dep.failure_action}` : null],
    ["Success threshold", threshold(dep.success_threshold)],
    ["Retries", dep.retries || null],
    ["Downgrade allowed", dep.allow_downgrade ? "yes" : null],
    ["Sent", deliveryText(dep.delivery)],
    ["Deltas", deltaJobsText(dep.delta_jobs)],
    ["Finished", dep.finished ? when(dep.finished) : null],
  ].filter(([, v]) => v !== null && v !== undefined);
  if (dep.filter) {
    facts.push(["Filter", dep.filter.terms.map((t) => `${t.attribute} ${t.type} ${JSON.stringify(t.value)}`).join(" and ")]);
  }
  $("detail-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
  $("detail-actions").replaceChildren();
  controls($("detail-actions"), dep, () => showDeployment(depId));

  const phases = dep.phases && dep.phases.length ? dep.phases : null;
  $("detail-phases-box").hidden = !phases;
  $("detail-overall").replaceChildren();
  if (phases) {
    fillRows("detail-phases", phases, "phase", (row, p) => {
      row.dataset.phase = String(p.number);
      const { bar, text, rate } = phaseBar(p);
      cell(row, p.number);
      cell(row, phaseSize(p, p.number === phases.length));
      cell(row, phaseStart(p));
      cell(row, statusBadge(p.status));
      cell(row, el("div", { className: "progress" }, bar, el("small", {}, text)));
      cell(row, `${rate}%`, p.failures ? "bad" : "");
    });
  } else {
    const { bar, text } = deploymentBar(dep);
    $("detail-overall").append(bar, el("small", {}, text));
  }
  // the decision log: phases started, healthy, paused, resumed, aborted, with numbers
  $("detail-events").replaceChildren(...dep.events.map((e) =>
    el("li", { className: `event-${e.kind}` }, el("time", {}, when(e.created)), " ", e.message,
      e.by ? el("span", { className: "muted" }, ` (by ${e.by})`) : null)));
  $("detail-events-none").hidden = dep.events.length > 0;

  devicePager.show(devices.total, "device");
  fillRows("detail-rows", devices.items, "id", (row, device) => {
    cell(row, link(`#device/${device.id}`, device.id), "id");
    cell(row, statusBadge(device.status)).append(device.substate ? ` (${device.substate})` : "");
    cell(row, device.attempts);
    cell(row, sentText(device));
    cell(row, when(device.finished));
    const logCell = cell(row, "");
    if (device.log) {
      button(logCell, "Show log", async () => {
        const text = await api("GET", `${API.deployments}/${enc(dep.id)}/devices/${enc(device.id)}/log`);
        $("detail-log-title").textContent = `Log of device ${device.id}`;
        $("detail-log-text").textContent = text;
        $("detail-log").hidden = false;
      });
    }
  }, "No device has been handed it yet.");
}
