// Rollout creation: artifact, target (all, a static group, chosen devices, or a dynamic
// group with a dry run of who matches now), phases, health thresholds, times, install
// window, downgrade. The server checks everything again and its one line is shown as it is.
import {
  $, ADMIN, API, Pager, api, apiPage, can, cell, el, enc, fillRows, fillSelect, link, request,
  say, session, statusBadge,
} from "./lib.js";

const OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex"];
const SCOPES = ["inventory", "identity", "system"];
let savedFilters = [];

function target() { return document.querySelector("input[name=target]:checked").value; }

// --- the form's moving parts ---------------------------------------------------
function showTargetParts() {
  const t = target();
  $("target-group").hidden = t !== "group";
  $("target-devices").hidden = t !== "devices";
  $("target-filter").hidden = t !== "filter";
  // a dynamic group's devices are not known in advance: no phases, no thresholds (§9.3)
  $("phases-box").hidden = t === "filter";
  $("thresholds-box").hidden = t === "filter";
  showStartPart();
}

function showStartPart() {
  const phased = target() !== "filter" && $("phases").rows.length > 0;
  $("start-label").hidden = phased;  // with phases, phase 1 carries the start time
}

function select(options, value, label) {
  const s = el("select", { "aria-label": label });
  for (const [v, text] of options) s.append(el("option", { value: v }, text));
  if (value !== undefined) s.value = value;
  return s;
}

function addTerm(term = { scope: "inventory", attribute: "", type: "$eq", value: "" }, locked = false) {
  const row = el("tr");
  const value = Array.isArray(term.value) ? term.value.join(", ") : String(term.value);
  const parts = [
    select(SCOPES.map((s) => [s, s]), term.scope, "scope"),
    el("input", { type: "text", value: term.attribute, "aria-label": "attribute", list: "attribute-names" }),
    select(OPERATORS.map((o) => [o, o]), term.type, "test"),
    el("input", { type: "text", value, "aria-label": "value" }),
    el("input", { type: "checkbox", "aria-label": "compare as a number", checked: typeof term.value === "number"
      || (Array.isArray(term.value) && typeof term.value[0] === "number") }),
  ];
  for (const part of parts) {
    part.disabled = locked;
    row.append(el("td", {}, part));
  }
  const remove = el("button", { type: "button", hidden: locked, "aria-label": "remove this condition" }, "Remove");
  remove.addEventListener("click", () => row.remove());
  row.append(el("td", {}, remove));
  $("terms").append(row);
}

function readTerms() {
  return [...$("terms").rows].map((row) => {
    const [scope, attribute, type, raw, number] = [...row.querySelectorAll("select, input")];
    const one = (text) => (number.checked ? Number(text) : text);
    let value;
    if (type.value === "$exists") value = !["false", "no", "0"].includes(raw.value.trim().toLowerCase());
    else if (type.value === "$in" || type.value === "$nin") value = raw.value.split(",").map((v) => one(v.trim()));
    else value = one(raw.value);
    return { scope: scope.value, attribute: attribute.value.trim(), type: type.value, value };
  });
}

function showFilter() {
  const id = $("rollout-filter").value;
  const saved = savedFilters.find((f) => f.id === id);
  $("terms").replaceChildren();
  $("new-filter").hidden = Boolean(saved) || !can(ADMIN);
  if (saved) for (const term of saved.terms) addTerm(term, true);
  else addTerm();
  $("dry-run-result").hidden = true;
}

function addPhase() {
  const number = $("phases").rows.length + 1;
  const starts = number === 1
    ? [["now", "at once"], ["time", "at a time"]]
    : [["healthy", `when phase ${number - 1} is healthy`], ["time", "at a time"],
      ["both", `when phase ${number - 1} is healthy, not before a time`]];
  const row = el("tr", { dataset: { phase: number } },
    el("td", {}, `${number}`),
    el("td", {}, el("input", { type: "number", min: 1, "aria-label": `phase ${number} size`, placeholder: "the rest" })),
    el("td", {}, select(starts, undefined, `phase ${number} starts`)),
    el("td", {}, el("input", { type: "datetime-local", "aria-label": `phase ${number} not before` })));
  const remove = el("button", { type: "button" }, "Remove");
  remove.addEventListener("click", () => { $("phases").lastElementChild.remove(); showStartPart(); });
  row.append(el("td", {}, remove));
  // only the last phase can be removed: the numbers stay in order
  for (const older of $("phases").querySelectorAll("button")) older.hidden = true;
  $("phases").append(row);
  showStartPart();
}

function isoTime(value) { return value ? new Date(value).toISOString() : undefined; }

function readPhases(unit) {
  return [...$("phases").rows].map((row) => {
    const [size, start, at] = [...row.querySelectorAll("input, select")];
    const phase = {};
    if (size.value) phase[unit === "percent" ? "batch_size" : "batch_count"] = Number(size.value);
    if (start.value === "healthy" || start.value === "both") phase.start_when_healthy = true;
    if ((start.value === "time" || start.value === "both") && at.value) phase.start_ts = isoTime(at.value);
    return phase;
  });
}

function readThreshold(valueId, unitId) {
  const value = $(valueId).value;
  if (!value) return undefined;
  return { [$(unitId).value]: Number(value) };
}

// --- the dry run -----------------------------------------------------------------
const dryRunPager = new Pager("dryrun", 20, () => dryRun().catch((err) => say(err.message, true)));

async function search(terms, page, perPage) {
  const { data, headers } = await request("POST", `${API.filters}/search`,
    { json: { filters: terms, page, per_page: perPage } });
  return { items: data, total: Number(headers.get("X-Total-Count") || data.length) };
}

async function dryRun() {
  const terms = readTerms();
  const accepted = [...terms, { scope: "identity", attribute: "status", type: "$eq", value: "accepted" }];
  const [found, reached] = await Promise.all([
    search(terms, dryRunPager.page, dryRunPager.perPage), search(accepted, 1, 1)]);
  if (dryRunPager.clamp(found.total)) return dryRun();
  dryRunPager.show(found.total, "device matches now", "devices match now");
  $("dryrun-reached").textContent = `${reached.total} of them accepted: a deployment reaches those, `
    + "and devices that join the group while it is open.";
  fillRows("dryrun-rows", found.items, "id", (row, device) => {
    const attrs = Object.fromEntries(device.attributes.map((a) => [a.name, a.value]));
    cell(row, link(`#device/${device.id}`, device.id), "id");
    cell(row, statusBadge(attrs.status));
    cell(row, attrs.device_type);
    cell(row, attrs.artifact_name);
    cell(row, attrs.group);
  }, "No device matches now.");
  $("dry-run-result").hidden = false;
}

// --- showing and sending ---------------------------------------------------------
export async function showRollout() {
  const [artifacts, groups, filters] = await Promise.all([
    api("GET", API.artifacts), api("GET", API.groups), apiPage(`${API.filters}?per_page=100`),
  ]);
  savedFilters = filters.items;
  fillSelect($("rollout-artifact"), [...new Set(artifacts.map((a) => a.name))].map((n) => [n, n]));
  fillSelect($("rollout-group"), groups.map((g) => [g, g]));
  const choices = savedFilters.map((f) => [f.id, f.name]);
  if (can(ADMIN)) choices.push(["", "a new dynamic group…"]);  // saving a filter is an admin's
  const before = $("rollout-filter").value;
  fillSelect($("rollout-filter"), choices);
  if (before !== $("rollout-filter").value || !$("terms").rows.length) showFilter();
  showTargetParts();
}

async function targetPath(body) {
  const t = target();
  if (t === "all") {
    body.all_devices = true;
  } else if (t === "devices") {
    body.devices = $("rollout-devices").value.split(/[\s,]+/).filter(Boolean);
  } else if (t === "group") {
    if (!$("rollout-group").value) throw new Error("choose a static group (set one on a device first)");
    return `${API.deployments}/group/${enc($("rollout-group").value)}`;
  } else {
    let filterId = $("rollout-filter").value;
    if (!filterId && !can(ADMIN)) throw new Error("choose a saved dynamic group: making one is an admin's");
    if (!filterId) {
      const { headers } = await request("POST", API.filters,
        { json: { name: $("new-filter-name").value.trim(), terms: readTerms() } });
      filterId = headers.get("Location").split("/").pop();
      savedFilters.push({ id: filterId, name: $("new-filter-name").value.trim(), terms: readTerms() });
      fillSelect($("rollout-filter"), [...savedFilters.map((f) => [f.id, f.name]), ["", "a new dynamic group…"]]);
      $("rollout-filter").value = filterId;
      showFilter();
    }
    body.filter_id = filterId;
    return API.dynamicDeployments;
  }
  return API.deployments;
}

// after a rollout is made, the next one starts from an empty form
function resetForm() {
  $("rollout-form").reset();
  $("phases").replaceChildren();
  $("dry-run-result").hidden = true;
  showFilter();
  showTargetParts();
}

async function create(event) {
  event.preventDefault();
  const body = { name: $("rollout-name").value, artifact_name: $("rollout-artifact").value };
  const dynamic = target() === "filter";
  if (!dynamic) {
    const phases = readPhases($("phase-unit").value);
    if (phases.length) body.phases = phases;
    body.failure_threshold = readThreshold("failure-value", "failure-unit");
    if (body.failure_threshold) body.failure_action = $("failure-action").value;
    body.success_threshold = readThreshold("success-value", "success-unit");
  }
  if (dynamic || !body.phases) body.start_ts = isoTime($("start-ts").value);
  body.end_ts = isoTime($("end-ts").value);
  const [from, to] = [$("window-from").value, $("window-to").value];
  if (from || to) body.install_window = `${from}-${to}`;
  if (Number($("retries").value)) body.retries = Number($("retries").value);
  if ($("allow-downgrade").checked) body.allow_downgrade = true;
  const submit = $("rollout-form").querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const path = await targetPath(body);
    const { headers } = await request("POST", path, { json: body });
    const id = headers.get("Location").split("/").pop();
    say(`Rollout ${body.name} created.`);
    resetForm();
    session.keepMessage = true;
    location.hash = `#deployment/${id}`;
  } catch (err) {
    say(`Rollout not created: ${err.message}`, true);
  } finally {
    submit.disabled = false;
  }
}

export function setUpRollout() {
  for (const radio of document.querySelectorAll("input[name=target]")) radio.addEventListener("change", showTargetParts);
  $("rollout-filter").addEventListener("change", showFilter);
  $("add-term").addEventListener("click", () => addTerm());
  $("add-phase").addEventListener("click", addPhase);
  $("dry-run").addEventListener("click", () => {
    dryRunPager.page = 1;
    dryRun().catch((err) => say(`Dry run failed: ${err.message}`, true));
  });
  $("rollout-form").addEventListener("submit", create);
}
