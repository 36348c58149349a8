// The audit log (admins): paged and filtered by the server (GET .../auditlogs/logs).
import { $, API, Pager, apiPage, cell, fillRows, session, when } from "./lib.js";

const auditPager = new Pager("audit", 50, () => session.refresh());

function auditQuery() {
  const form = $("audit-form");
  const params = new URLSearchParams({ page: String(auditPager.page), per_page: String(auditPager.perPage) });
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

export function resetAuditPage() { auditPager.page = 1; }

export async function showAudit() {
  let page = await apiPage(`${API.auditlogs}?${auditQuery()}`);
  if (auditPager.clamp(page.total)) page = await apiPage(`${API.auditlogs}?${auditQuery()}`);
  auditPager.show(page.total, "entry", "entries");
  fillRows("audit-rows", page.items.map((e, i) => ({ ...e, row: String(i) })), "row", (row, e) => {
    cell(row, when(e.time));
    cell(row, e.actor.token_id ? `${e.actor.email} (token)` : e.actor.email);
    cell(row, e.action);
    cell(row, `${e.object.type} ${objectName(e.object) || e.object.id}`);
    cell(row, e.change);
    cell(row, e.address);
  }, "No entries match.");
}
