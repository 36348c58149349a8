// The fleet overview (landing page): devices by status and by running artifact, counted
// by the server (GET .../inventory/statistics), open deployments with their phases, and
// what needs a person. Every list here is one bounded page.
import { API, $, api, apiPage, el, link, plural, statusBadge } from "./lib.js";
import { barChart, deploymentBar, phaseBar, tally } from "./charts.js";

const OPEN_SHOWN = 10;
const STATUS_ORDER = ["accepted", "pending", "preauthorized", "rejected", "noauth", "decommissioned"];

function progress(dep) {
  const box = el("div", { className: "progress" });
  if (dep.phases && dep.phases.length) {
    for (const phase of dep.phases) {
      const { bar, rate } = phaseBar(phase);
      box.append(el("div", { className: "phase-line", dataset: { phase: phase.number } },
        el("span", { className: "phase-name" }, `phase ${phase.number}`), bar,
        el("span", { className: "phase-numbers" },
          `${phase.successes}✓ ${phase.failures}✗ of ${phase.devices}`,
          phase.failures ? el("small", { className: "rate" }, ` ${rate}% failed`) : null,
          ` · ${phase.status}`)));
    }
  } else {
    const { bar, rate } = deploymentBar(dep);
    const t = tally(dep.statistics);
    box.append(el("div", { className: "phase-line" },
      el("span", { className: "phase-name" }, "devices"), bar,
      el("span", { className: "phase-numbers" }, `${t.success}✓ ${t.failure}✗ of ${dep.device_count}`,
        t.failure ? el("small", { className: "rate" }, ` ${rate}% failed`) : null)));
  }
  return box;
}

export function rolloutCard(dep) {
  return el("li", { className: "rollout", dataset: { id: dep.id } },
    el("div", { className: "rollout-head" },
      link(`#deployment/${dep.id}`, dep.name), " ", el("span", { className: "muted" }, dep.artifact_name),
      " ", statusBadge(dep.status)),
    progress(dep));
}

export async function showOverview() {
  const [stats, running, paused, waiting] = await Promise.all([
    api("GET", `${API.statistics}?attribute=artifact_name&limit=10`),
    apiPage(`${API.deployments}?status=inprogress&per_page=${OPEN_SHOWN}`),
    apiPage(`${API.deployments}?status=paused&per_page=${OPEN_SHOWN}`),
    apiPage(`${API.deployments}?status=pending&per_page=${OPEN_SHOWN}`),
  ]);
  const byStatus = STATUS_ORDER.filter((s) => stats.by_status[s])
    .map((s) => ({ label: s, value: stats.by_status[s], href: `#devices/${s}`, cls: `bar-${s}` }));
  $("overview-total").textContent = `${plural(stats.devices, "device")}, ${stats.by_status.accepted || 0} accepted`;
  $("chart-status").replaceChildren(byStatus.length
    ? barChart(byStatus, "devices by status") : el("p", { className: "muted" }, "No devices yet."));

  const versions = stats.values.map((v) => ({ label: v.value, value: v.count }));
  if (stats.other) versions.push({ label: "other versions", value: stats.other, cls: "bar-other" });
  if (stats.missing) versions.push({ label: "not reported", value: stats.missing, cls: "bar-other" });
  $("chart-artifacts").replaceChildren(versions.length
    ? barChart(versions, "accepted devices by running artifact")
    : el("p", { className: "muted" }, "No accepted device has reported its artifact yet."));

  // open: in progress (paused ones included, shown once) and waiting to start
  const seen = new Set();
  const open = [...running.items, ...waiting.items].filter((d) => !seen.has(d.id) && seen.add(d.id));
  const more = running.total + waiting.total - open.length;
  $("overview-rollouts").replaceChildren(...open.map(rolloutCard));
  $("overview-rollouts-empty").hidden = open.length > 0;
  $("overview-rollouts-more").hidden = more <= 0;
  $("overview-rollouts-more").textContent = `${plural(more, "more open deployment")}: see Deployments`;

  const attention = [];
  for (const dep of paused.items) {
    attention.push(el("li", { className: "warn" }, "Paused: ", link(`#deployment/${dep.id}`, dep.name),
      ` (${dep.artifact_name}): resume or abort it`));
  }
  if (paused.total > paused.items.length) {
    attention.push(el("li", {}, link("#deployments/paused", `${paused.total - paused.items.length} more paused`)));
  }
  for (const dep of open) {
    const failed = (dep.statistics && dep.statistics.failure) || 0;
    if (failed) {
      attention.push(el("li", { className: "bad" }, `${plural(failed, "device")} failed in `,
        link(`#deployment/${dep.id}`, dep.name)));
    }
  }
  const pending = stats.by_status.pending || 0;
  if (pending) {
    attention.push(el("li", {}, link("#devices/pending", `${plural(pending, "device")} waiting for admission`)));
  }
  $("attention").replaceChildren(...attention);
  $("attention-none").hidden = attention.length > 0;
}
