// Plumbing shared by the views: the API's paths, calls with the user's JWT, the role,
// and small DOM helpers. Every value from the server goes into the page as text
// (textContent, attributes), never as markup.

export const API = {
  login: "/api/management/v1/useradm/auth/login",
  me: "/api/management/v1/useradm/users/me",
  devices: "/api/management/v2/devauth/devices",
  inventory: "/api/management/v1/inventory/devices",
  statistics: "/api/management/v1/inventory/statistics",
  groups: "/api/management/v1/inventory/groups",
  filters: "/api/management/v2/inventory/filters",
  artifacts: "/api/management/v1/deployments/artifacts",
  deployments: "/api/management/v1/deployments/deployments",
  dynamicDeployments: "/api/management/v2/deployments/deployments",
  auditlogs: "/api/management/v1/auditlogs/logs",
  integrations: "/api/management/v1/iot-manager/integrations",
};

// Mender's role names, by rank (docs/management-api.md, "Roles")
const RANK = { RBAC_ROLE_OBSERVER: 1, RBAC_ROLE_DEPLOYMENTS_MANAGER: 2, RBAC_ROLE_PERMIT_ALL: 3 };
export const SHORT = {
  RBAC_ROLE_OBSERVER: "read-only",
  RBAC_ROLE_DEPLOYMENTS_MANAGER: "release-manager",
  RBAC_ROLE_PERMIT_ALL: "admin",
};
export const ADMIN = "RBAC_ROLE_PERMIT_ALL";
export const RELEASE = "RBAC_ROLE_DEPLOYMENTS_MANAGER";

// the logged-in user with its role (GET .../users/me); `onLogout` and `refresh` (show
// the current view again) are the router's; `keepMessage`: the next view keeps the message
export const session = { me: null, onLogout: () => {}, refresh: () => {}, keepMessage: false };

// Whether the user's role may do what needs `role`; the server checks again on every call.
export function can(role) {
  return Boolean(session.me) && (RANK[session.me.roles[0]] || 0) >= RANK[role];
}

export const $ = (id) => document.getElementById(id);
export const enc = encodeURIComponent;

export function token() { return sessionStorage.getItem("pyupdate-token"); }

export function say(text, isError = false) {
  const box = $("message");
  box.textContent = text;
  box.className = isError ? "error" : "";
  box.hidden = !text;
}

export class ApiError extends Error {}
export const LOGGED_OUT = "not logged in";

// One call: the parsed body and the response headers (X-Total-Count, Location).
export async function request(method, path, { json, body, headers = {} } = {}) {
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
    session.onLogout("Your session has ended: log in again.");
    throw new ApiError(LOGGED_OUT);
  }
  if (!response.ok) throw new ApiError(await errorText(response));
  const type = response.headers.get("Content-Type") || "";
  let data = null;
  if (response.status !== 204) data = type.includes("json") ? await response.json() : await response.text();
  return { data, headers: response.headers };
}

export async function api(method, path, options) {
  return (await request(method, path, options)).data;
}

// A page of a paged list: its items and how many there are in all (X-Total-Count).
export async function apiPage(path) {
  const { data, headers } = await request("GET", path);
  return { items: data, total: Number(headers.get("X-Total-Count") || data.length) };
}

// The server's one line ({"error": ...}), or the HTTP status.
export async function errorText(response) {
  try {
    const doc = await response.json();
    if (doc && doc.error) return doc.error;
  } catch (_) { /* not JSON */ }
  return `${response.status} ${response.statusText}`;
}

// Errors of a click or a refresh end up in the message line, as the server said them.
export function report(err, prefix = "") {
  if (err instanceof ApiError && err.message === LOGGED_OUT) return;
  say(`${prefix}${err.message}`, true);
}

// --- DOM helpers ---------------------------------------------------------------
// el("a", {href: "#x", className: "c"}, "text", child): attributes, then text or nodes.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "hidden") node.hidden = Boolean(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function cell(row, content, className) {
  const td = document.createElement("td");
  if (content instanceof Node) td.append(content);
  else td.textContent = content === undefined || content === null ? "" : String(content);
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

export function button(parent, label, onClick, className) {
  const b = el("button", { type: "button", className });
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try { await onClick(); } catch (err) { report(err); } finally { b.disabled = false; }
  });
  parent.appendChild(b);
  return b;
}

// One <tr> per item, keyed by `key` (the tests and the refresh find rows by it).
export function fillRows(tbodyId, items, key, fill, empty = "") {
  const rows = $(tbodyId);
  rows.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    row.dataset[key] = item[key];
    fill(row, item);
    rows.appendChild(row);
  }
  if (!items.length && empty) {
    const columns = rows.closest("table").querySelectorAll("thead th").length || 1;
    rows.append(el("tr", { className: "empty" }, el("td", { colspan: columns }, empty)));
  }
}

export function fillSelect(select, options) {
  const now = [...select.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(now) === JSON.stringify(options)) return;  // unchanged: keep focus and choice
  const keep = select.value;
  select.replaceChildren(...options.map(([value, label]) => el("option", { value }, label)));
  if (options.some(([value]) => value === keep)) select.value = keep;
}

export function link(href, text, className) { return el("a", { href, className }, text); }

export function statusBadge(status) { return el("span", { className: `badge status-${status}` }, status); }

export function when(ts) { return ts ? ts.replace("T", " ").replace(/\.\d+Z$|Z$/, " UTC") : ""; }

export function mib(bytes) { return `${(bytes / 1048576).toFixed(1)} MiB`; }

export function plural(n, word, many = `${word}s`) { return `${n} ${n === 1 ? word : many}`; }

export function identityText(identity) {
  return Object.entries(identity || {}).map(([k, v]) => `${k}=${v}`).join(", ");
}

// Previous / Next under a paged table: `state.page` is changed, then `reload()` runs.
export class Pager {
  constructor(prefix, perPage, reload) {
    this.prefix = prefix;
    this.perPage = perPage;
    this.page = 1;
    $(`${prefix}-prev`).addEventListener("click", () => { this.page = Math.max(1, this.page - 1); reload(); });
    $(`${prefix}-next`).addEventListener("click", () => { this.page += 1; reload(); });
  }

  get query() { return `page=${this.page}&per_page=${this.perPage}`; }

  // after a load: back to the last page if it is past it; true if the page moved
  clamp(total) {
    const pages = Math.max(1, Math.ceil(total / this.perPage));
    const moved = this.page > pages;
    this.page = Math.min(this.page, pages);
    return moved;
  }

  // with the rows: say where we are
  show(total, noun, many) {
    const pages = Math.max(1, Math.ceil(total / this.perPage));
    const counted = plural(total, noun, many);
    $(`${this.prefix}-count`).textContent = pages > 1 ? `${counted}, page ${this.page} of ${pages}` : counted;
    $(`${this.prefix}-prev`).disabled = this.page <= 1;
    $(`${this.prefix}-next`).disabled = this.page >= pages;
    $(`${this.prefix}-pager`).hidden = pages <= 1;
  }
}
