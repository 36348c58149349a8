// pyupdate web UI: one page over the management API (docs/management-api.md).
// The user's JWT lives in sessionStorage; every value from the server is shown with
// textContent, never parsed as HTML. The page asks the server who the user is and with
// which role (GET .../users/me) and shows no button the role would be refused (403).
"use strict";

const API = {
  login: "/api/management/v1/useradm/auth/login",
  devices: "/api/management/v2/devauth/devices",
  inventory: "/api/management/v1/inventory/devices",
  groups: "/api/management/v1/inventory/groups",
  artifacts: "/api/management/v1/deployments/artifacts",
  deployments: "/api/management/v1/deployments/deployments",
  me: "/api/management/v1/useradm/users/me",
  auditlogs: "/api/management/v1/auditlogs/logs",
};
const VIEWS = ["devices", "artifacts", "deployments", "audit"];
// Mender's role names, by rank (docs/management-api.md, "Roles")
const RANK = { RBAC_ROLE_OBSERVER: 1, RBAC_ROLE_DEPLOYMENTS_MANAGER: 2, RBAC_ROLE_PERMIT_ALL: 3 };
const SHORT = { RBAC_ROLE_OBSERVER: "read-only", RBAC_ROLE_DEPLOYMENTS_MANAGER: "release-manager", RBAC_ROLE_PERMIT_ALL: "admin" };
const ADMIN = "RBAC_ROLE_PERMIT_ALL";
const RELEASE = "RBAC_ROLE_DEPLOYMENTS_MANAGER";
const REFRESH_MS = 5000;

const $ = (id) => document.getElementById(id);
let refreshTimer = null;
let openDeployment = null;
let me = null;  // the logged-in user with its role, from the server

// Whether the user's role may do what needs `role`; the server checks again on every call.
function can(role) { return Boolean(me) && (RANK[me.roles[0]] || 0) >= RANK[role]; }

// --- plumbing ------------------------------------------------------------------
function token() { return sessionStorage.getItem("pyupdate-token"); }

function say(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}

class ApiError extends Error {}

async function api(method, path, { json, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token() && !init.headers.Authorization) init.headers.Authorization = `Bearer ${token()}`;
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(path, init);
  if (response.status === 401 && path !== API.login) {
    logout("Your session has ended: log in again.");
    throw new ApiError("not logged in");
  }
  if (!response.ok) throw new ApiError(await errorText(response));
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 204) return null;
  return type.includes("json") ? response.json() : response.text();
}

async function errorText(response) {
  try {
    const doc = await response.json();
    if (doc && doc.error) return doc.error;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function button(parent, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await onClick(); } catch (err) { if (!(err instanceof ApiError && err.message === "not logged in")) say(err.message, true); }
    finally { b.disabled = false; }
  });
  parent.appendChild(b);
  return b;
}

// One <tr> per item, keyed by `key` (the tests and the refresh find rows by it).
function fillRows(tbodyId, items, key, fill) {
  const rows = $(tbodyId);
  rows.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    row.dataset[key] = item[key];
    fill(row, item);
    rows.appendChild(row);
  }
}

function when(ts) { return ts ? ts.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : ""; }

function mib(bytes) { return `${(bytes / 1048576).toFixed(1)} MiB`; }

// --- login ---------------------------------------------------------------------
// RFC 7617 with charset UTF-8: btoa() alone takes Latin-1 and throws beyond it (`€`)
function basicCredentials(user, password) {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const basic = basicCredentials(form.email.value, form.password.value);
    const jwt = await api("POST", API.login, { headers: { Authorization: `Basic ${basic}` } });
    sessionStorage.setItem("pyupdate-token", jwt.trim());
    me = null;
    form.reset();
    say("");
    route();
  } catch (err) {
    say(`Login failed: ${err.message}`, true);
  }
}

function logout(text = "") {
  sessionStorage.removeItem("pyupdate-token");
  me = null;
  route();
  say(text, Boolean(text));
}

// --- devices -------------------------------------------------------------------
// The server pages the list: the UI asks for one page at a time, never for all of them
// (unauthenticated devices can make thousands of pending entries).
const DEVICES_PER_PAGE = 50;
let devicePage = 1;

async function showDevices() {
  const status = $("device-status").value;
  const filter = status ? `&status=${encodeURIComponent(status)}` : "";
  const total = await api("GET", `${API.devices}/count${status ? `?status=${encodeURIComponent(status)}` : ""}`);
  const pages = Math.max(1, Math.ceil(total.count / DEVICES_PER_PAGE));
  devicePage = Math.min(devicePage, pages);
  const devices = await api("GET", `${API.devices}?per_page=${DEVICES_PER_PAGE}&page=${devicePage}${filter}`);
  const ids = devices.map((d) => `&id=${encodeURIComponent(d.id)}`).join("");
  const inventory = devices.length
    ? await api("GET", `${API.inventory}?per_page=${DEVICES_PER_PAGE}${ids}`) : [];
  const counted = `${total.count} device${total.count === 1 ? "" : "s"}`;
  $("device-count").textContent = pages > 1 ? `${counted}, page ${devicePage} of ${pages}` : counted;
  $("device-prev").disabled = devicePage <= 1;
  $("device-next").disabled = devicePage >= pages;
  $("device-pager").hidden = pages <= 1;
  const attrs = {};
  for (const item of inventory) {
    attrs[item.id] = Object.fromEntries(item.attributes.map((a) => [a.name, a.value]));
  }
  fillRows("device-rows", devices, "id", (row, device) => {
    const seen = attrs[device.id] || {};
    cell(row, device.id, "id");
    cell(row, Object.entries(device.identity_data).map(([k, v]) => `${k}=${v}`).join(", "));
    cell(row, device.status, `status-${device.status}`);
    cell(row, seen.device_type);
    cell(row, seen.artifact_name);
    cell(row, seen.group);
    cell(row, when(device.updated_ts));
    const actions = cell(row, "");
    if (!can(ADMIN)) return;  // admission, groups and decommissioning are an admin's
    const authSet = device.auth_sets[device.auth_sets.length - 1];
    if (authSet && device.status !== "decommissioned") {
      const setStatus = (next) => async () => {
        await api("PUT", `${API.devices}/${device.id}/auth/${authSet.id}/status`, { json: { status: next } });
        say(`Device ${device.id} ${next}.`);
        await showDevices();
      };
      if (authSet.status !== "accepted") button(actions, "Accept", setStatus("accepted"));
      if (authSet.status !== "rejected") button(actions, "Reject", setStatus("rejected"));
    }
    if (device.status === "accepted") button(actions, "Group", () => setGroup(device.id, seen.group));
    if (device.status !== "decommissioned") {
      button(actions, "Decommission", async () => {
        if (!confirm(`Decommission device ${device.id}? It is refused from then on.`)) return;
        await api("DELETE", `${API.devices}/${device.id}`);
        say(`Device ${device.id} decommissioned.`);
        await showDevices();
      });
    }
  });
}

async function setGroup(deviceId, current) {
  const name = prompt(`Static group for device ${deviceId} (empty: none)`, current || "");
  if (name === null) return;
  if (name.trim()) {
    await api("PUT", `${API.inventory}/${deviceId}/group`, { json: { group: name.trim() } });
    say(`Device ${deviceId} is in group ${name.trim()}.`);
  } else if (current) {
    await api("DELETE", `${API.inventory}/${deviceId}/group/${encodeURIComponent(current)}`);
    say(`Device ${deviceId} left group ${current}.`);
  }
  await showDevices();
}

// --- artifacts -----------------------------------------------------------------
async function showArtifacts() {
  const artifacts = await api("GET", API.artifacts);
  fillRows("artifact-rows", artifacts, "name", (row, artifact) => {
    cell(row, artifact.name);
    cell(row, artifact.device_types_compatible.join(", "));
    cell(row, artifact.updates.map((u) => u.type_info.type || "bootstrap").join(", "));
    cell(row, artifact.signed ? "yes" : "no");
    cell(row, mib(artifact.size));
    cell(row, when(artifact.modified));
    const actions = cell(row, "");
    if (can(RELEASE)) button(actions, "Delete", async () => {
      if (!confirm(`Delete artifact ${artifact.name}?`)) return;
      await api("DELETE", `${API.artifacts}/${artifact.id}`);
      say(`Artifact ${artifact.name} deleted.`);
      await showArtifacts();
    });
  });
}

function upload(event) {
  event.preventDefault();
  const form = event.target;
  const file = form.artifact.files[0];
  if (!file) return;
  const data = new FormData();
  data.append("description", form.description.value);
  data.append("size", String(file.size));
  data.append("artifact", file);  // last: the server streams it
  // XMLHttpRequest, not fetch: it reports upload progress for big rootfs artifacts
  const request = new XMLHttpRequest();
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.value = 0;
  request.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
  request.onload = async () => {
    bar.hidden = true;
    if (request.status === 201) {
      say(`Uploaded ${file.name}.`);
      form.reset();
      await showArtifacts();
    } else {
      let text = `${request.status} ${request.statusText}`;
      try { text = JSON.parse(request.responseText).error || text; } catch (_) { /* not JSON */ }
      say(`Upload failed: ${text}`, true);
    }
  };
  request.onerror = () => { bar.hidden = true; say("Upload failed: the connection broke.", true); };
  request.open("POST", API.artifacts);
  request.setRequestHeader("Authorization", `Bearer ${token()}`);
  request.send(data);
}

// --- deployments ---------------------------------------------------------------
async function showDeployments() {
  const [deployments, artifacts, devices, groups] = await Promise.all([
    api("GET", `${API.deployments}?per_page=100`),
    api("GET", API.artifacts),
    api("GET", `${API.devices}?status=accepted&per_page=500`),
    api("GET", API.groups),
  ]);
  fillSelect($("deploy-artifact"), [...new Set(artifacts.map((a) => a.name))].map((n) => [n, n]));
  fillSelect($("deploy-target"), [["all", "all accepted devices"],
    ...groups.map((g) => [`group:${g}`, `group ${g}`]),
    ...devices.map((d) => [d.id, `${d.id} (${Object.values(d.identity_data).join(", ")})`])]);
  fillRows("deployment-rows", deployments, "id", (row, dep) => {
    cell(row, dep.name);
    cell(row, dep.artifact_name);
    cell(row, when(dep.created));
    cell(row, dep.aborted ? "aborted" : dep.status, `status-${dep.aborted ? "aborted" : dep.status}`);
    const counts = Object.entries(dep.statistics).filter(([, n]) => n).map(([s, n]) => `${s}: ${n}`);
    // phased: each phase's state, devices handed of its size, and its failures
    const phases = (dep.phases || []).map((p) =>
      `phase ${p.number} ${p.status} ${p.device_count}/${p.devices}${p.failures ? `, ${p.failures} failed` : ""}`);
    cell(row, [...counts, ...phases].join("; "));
    const actions = cell(row, "");
    button(actions, "Details", () => showDeployment(dep));
    if (dep.status !== "finished" && can(RELEASE)) {
      const [label, status] = dep.paused ? ["Resume", "inprogress"] : ["Pause", "paused"];
      button(actions, label, async () => {
        await api("PUT", `${API.deployments}/${dep.id}/status`, { json: { status } });
        say(`Deployment ${dep.name} ${dep.paused ? "resumed" : "paused"}.`);
        await showDeployments();
      });
      button(actions, "Abort", async () => {
        await api("PUT", `${API.deployments}/${dep.id}/status`, { json: { status: "aborted" } });
        say(`Deployment ${dep.name} aborted.`);
        await showDeployments();
      });
    }
  });
  if (openDeployment) await showDeployment(openDeployment, false);
}

function fillSelect(select, options) {
  const keep = select.value;
  select.replaceChildren(...options.map(([value, label]) => {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = label;
    return option;
  }));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

async function showDeployment(dep, resetLog = true) {
  openDeployment = dep;
  const [devices, detail] = await Promise.all([
    api("GET", `${API.deployments}/${dep.id}/devices`),
    api("GET", `${API.deployments}/${dep.id}`),
  ]);
  $("deployment-detail").hidden = false;
  $("detail-title").textContent = `${dep.name}: ${dep.artifact_name}`;
  // the decision log: phases started, healthy, paused, resumed, aborted, with numbers
  $("detail-events").replaceChildren(...detail.events.map((e) => {
    const item = document.createElement("li");
    item.textContent = `${when(e.created)} ${e.message}`;
    return item;
  }));
  if (resetLog) $("detail-log").hidden = true;
  fillRows("detail-rows", devices, "id", (row, device) => {
    cell(row, device.id, "id");
    cell(row, device.substate ? `${device.status} (${device.substate})` : device.status, `status-${device.status}`);
    cell(row, device.attempts);
    const logCell = cell(row, "");
    if (device.log) {
      button(logCell, "Show log", async () => {
        const text = await api("GET", `${API.deployments}/${dep.id}/devices/${device.id}/log`);
        const pre = $("detail-log");
        pre.textContent = text;
        pre.hidden = false;
      });
    }
  });
}

async function deploy(event) {
  event.preventDefault();
  const form = event.target;
  const target = form.target.value;
  const body = { name: form.name.value, artifact_name: form.artifact_name.value };
  let path = API.deployments;
  if (target === "all") body.all_devices = true;
  else if (target.startsWith("group:")) path = `${API.deployments}/group/${encodeURIComponent(target.slice(6))}`;
  else body.devices = [target];
  try {
    await api("POST", path, { json: body });
    say(`Deployment ${body.name} created.`);
    form.name.value = "";
    await showDeployments();
  } catch (err) {
    say(`Deployment failed: ${err.message}`, true);
  }
}

// --- audit log -----------------------------------------------------------------
// Paged and filtered by the server (GET .../auditlogs/logs); admins only.
const AUDIT_PER_PAGE = 50;
let auditPage = 1;

function auditQuery() {
  const form = $("audit-form");
  const params = new URLSearchParams({ page: String(auditPage), per_page: String(AUDIT_PER_PAGE) });
  for (const name of ["object_type", "action", "actor_email", "object_id"]) {
    const value = form[name].value.trim();
    if (value) params.set(name, value);
  }
  if (form.start_date.value) params.set("start_date", `${form.start_date.value}T00:00:00Z`);
  if (form.end_date.value) params.set("end_date", `${form.end_date.value}T23:59:59Z`);
  return params.toString();
}

function objectName(object) {
  const details = object[object.type] || {};
  return details.name || details.email || (details.identity_data
    ? Object.entries(details.identity_data).map(([k, v]) => `${k}=${v}`).join(", ") : "");
}

async function showAudit() {
  const response = await fetch(`${API.auditlogs}?${auditQuery()}`, { headers: { Authorization: `Bearer ${token()}` } });
  if (response.status === 401) { logout("Your session has ended: log in again."); return; }
  if (!response.ok) throw new ApiError(await errorText(response));
  const entries = await response.json();
  const total = Number(response.headers.get("X-Total-Count") || entries.length);
  const pages = Math.max(1, Math.ceil(total / AUDIT_PER_PAGE));
  $("audit-count").textContent = `${total} entr${total === 1 ? "y" : "ies"}${pages > 1 ? `, page ${auditPage} of ${pages}` : ""}`;
  $("audit-prev").disabled = auditPage <= 1;
  $("audit-next").disabled = auditPage >= pages;
  $("audit-pager").hidden = pages <= 1;
  fillRows("audit-rows", entries.map((e, i) => ({ ...e, row: String(i) })), "row", (row, e) => {
    cell(row, when(e.time));
    cell(row, e.actor.token_id ? `${e.actor.email} (token)` : e.actor.email);
    cell(row, e.action);
    const name = objectName(e.object);
    cell(row, `${e.object.type} ${name || e.object.id}`);
    cell(row, e.change);
    cell(row, e.address);
  });
}

// --- routing -------------------------------------------------------------------
const SHOW = { devices: showDevices, artifacts: showArtifacts, deployments: showDeployments, audit: showAudit };

// Who is logged in, with which role: decides which controls the page shows.
async function whoAmI() {
  if (!me) me = await api("GET", API.me);
  $("whoami").textContent = `${me.email} (${SHORT[me.roles[0]] || me.roles[0]})`;
  $("nav-audit").hidden = !can(ADMIN);
  $("upload-form").hidden = !can(RELEASE);
  $("deploy-form").hidden = !can(RELEASE);
}

async function route() {
  clearTimeout(refreshTimer);
  const loggedIn = Boolean(token());
  $("nav").hidden = !loggedIn;
  $("login").hidden = loggedIn;
  try {
    if (loggedIn) await whoAmI();
  } catch (err) {
    if (!(err instanceof ApiError && err.message === "not logged in")) say(err.message, true);
    return;
  }
  let view = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "devices";
  if (view === "audit" && !can(ADMIN)) view = "devices";
  for (const name of VIEWS) $(name).hidden = !loggedIn || name !== view;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === view);
  if (!loggedIn) return;
  if (view !== "deployments") openDeployment = null;
  try {
    await SHOW[view]();
  } catch (err) {
    if (!(err instanceof ApiError && err.message === "not logged in")) say(err.message, true);
  }
  if (token()) refreshTimer = setTimeout(route, REFRESH_MS);
}

$("login-form").addEventListener("submit", login);
$("upload-form").addEventListener("submit", upload);
$("deploy-form").addEventListener("submit", deploy);
$("device-status").addEventListener("change", () => { devicePage = 1; route(); });
$("device-prev").addEventListener("click", () => { devicePage = Math.max(1, devicePage - 1); route(); });
$("device-next").addEventListener("click", () => { devicePage += 1; route(); });
$("audit-form").addEventListener("submit", (event) => { event.preventDefault(); auditPage = 1; say(""); route(); });
$("audit-prev").addEventListener("click", () => { auditPage = Math.max(1, auditPage - 1); route(); });
$("audit-next").addEventListener("click", () => { auditPage += 1; route(); });
$("logout").addEventListener("click", () => logout());
window.addEventListener("hashchange", () => { say(""); route(); });
route();
