// Devices: the paged list, and one device's page (identity, auth sets, inventory, the
// history of its deployments with their logs). Admission, groups and decommissioning
// are an admin's: other roles see no such button.
import {
  $, ADMIN, API, Pager, api, apiPage, button, can, cell, el, enc, fillRows, identityText, link,
  say, session, statusBadge, when,
} from "./lib.js";

// The server pages the list: the UI asks for one page at a time, never for all of them
// (unauthenticated devices can make thousands of pending entries).
const devicePager = new Pager("device", 50, () => session.refresh());

export function setDeviceStatus(status) {
  const select = $("device-status");
  if (status !== undefined && select.value !== status) {
    select.value = status;
    devicePager.page = 1;
  }
}

function attributesOf(item) {
  return Object.fromEntries((item ? item.attributes : []).filter((a) => a.scope === "inventory")
    .map((a) => [a.name, a.value]));
}

export async function showDevices() {
  const status = $("device-status").value;
  const filter = status ? `&status=${enc(status)}` : "";
  let page = await apiPage(`${API.devices}?${devicePager.query}${filter}`);
  if (devicePager.clamp(page.total)) {
    page = await apiPage(`${API.devices}?${devicePager.query}${filter}`);
  }
  const devices = page.items;
  const ids = devices.map((d) => `&id=${enc(d.id)}`).join("");
  const inventory = devices.length ? await api("GET", `${API.inventory}?per_page=${devices.length}${ids}`) : [];
  const attrs = {};
  for (const item of inventory) attrs[item.id] = { ...attributesOf(item), group: groupOf(item) };
  devicePager.show(page.total, "device");
  fillRows("device-rows", devices, "id", (row, device) => {
    const seen = attrs[device.id] || {};
    cell(row, link(`#device/${device.id}`, device.id), "id");
    cell(row, identityText(device.identity_data));
    cell(row, statusBadge(device.status));
    cell(row, seen.device_type);
    cell(row, seen.artifact_name);
    cell(row, seen.group);
    cell(row, when(device.updated_ts));
    deviceButtons(cell(row, "", "actions"), device, seen.group, showDevices);
  }, status ? `No ${status} devices.` : "No devices yet.");
}

function groupOf(item) {
  const found = (item ? item.attributes : []).find((a) => a.scope === "system" && a.name === "group");
  return found ? found.value : undefined;
}

// Accept / Reject (the newest auth set; on the device's page: each key's own), Group,
// Decommission: an admin's buttons.
function deviceButtons(parent, device, group, reload, withKeys = true) {
  if (!can(ADMIN)) return;
  const authSet = device.auth_sets[device.auth_sets.length - 1];
  if (withKeys && authSet && device.status !== "decommissioned") authSetButtons(parent, device, authSet, reload);
  if (device.status === "accepted") button(parent, "Group", () => setGroup(device.id, group, reload));
  if (device.status !== "decommissioned") {
    button(parent, "Decommission", async () => {
      if (!confirm(`Decommission device ${device.id}? It is refused from then on.`)) return;
      await api("DELETE", `${API.devices}/${enc(device.id)}`);
      say(`Device ${device.id} decommissioned.`);
      await reload();
    }, "danger");
  }
}

function authSetButtons(parent, device, authSet, reload) {
  const setStatus = (next) => async () => {
    await api("PUT", `${API.devices}/${enc(device.id)}/auth/${enc(authSet.id)}/status`, { json: { status: next } });
    say(`Device ${device.id} ${next}.`);
    await reload();
  };
  if (authSet.status !== "accepted") button(parent, "Accept", setStatus("accepted"));
  if (authSet.status !== "rejected") button(parent, "Reject", setStatus("rejected"));
}

async function setGroup(deviceId, current, reload) {
  const name = prompt(`Static group for device ${deviceId} (empty: none)`, current || "");
  if (name === null) return;
  if (name.trim()) {
    await api("PUT", `${API.inventory}/${enc(deviceId)}/group`, { json: { group: name.trim() } });
    say(`Device ${deviceId} is in group ${name.trim()}.`);
  } else if (current) {
    await api("DELETE", `${API.inventory}/${enc(deviceId)}/group/${enc(current)}`);
    say(`Device ${deviceId} left group ${current}.`);
  }
  await reload();
}

// --- one device ----------------------------------------------------------------
let shownDevice = null;
const historyPager = new Pager("history", 20, () => session.refresh());

export async function showDevice(deviceId) {
  if (deviceId !== shownDevice) {
    shownDevice = deviceId;
    historyPager.page = 1;
    $("history-log").hidden = true;
  }
  const [device, inventory] = await Promise.all([
    api("GET", `${API.devices}/${enc(deviceId)}`),
    api("GET", `${API.inventory}/${enc(deviceId)}`),
  ]);
  let history = await apiPage(`${API.deployments}/devices/${enc(deviceId)}?${historyPager.query}`);
  if (historyPager.clamp(history.total)) {
    history = await apiPage(`${API.deployments}/devices/${enc(deviceId)}?${historyPager.query}`);
  }
  const attrs = attributesOf(inventory);
  const group = groupOf(inventory);
  $("device-title").textContent = `Device ${identityText(device.identity_data) || device.id}`;
  const facts = [
    ["ID", device.id], ["Status", statusBadge(device.status)], ["Device type", attrs.device_type],
    ["Artifact", attrs.artifact_name], ["Static group", group || "none"],
    ["Added", when(device.created_ts)], ["Last change", when(device.updated_ts)],
  ];
  $("device-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));
  $("device-actions").replaceChildren();
  deviceButtons($("device-actions"), device, group, () => showDevice(deviceId), false);

  $("device-identity").replaceChildren(...Object.entries(device.identity_data || {})
    .map(([k, v]) => el("tr", {}, el("th", { scope: "row" }, k), el("td", {}, v))));
  fillRows("device-authsets", device.auth_sets, "id", (row, set) => {
    cell(row, set.id, "id");
    cell(row, statusBadge(set.status));
    cell(row, when(set.ts));
    cell(row, el("details", {}, el("summary", {}, "public key"), el("pre", {}, set.pubkey)));
    const actions = cell(row, "", "actions");
    if (can(ADMIN) && device.status !== "decommissioned") {
      authSetButtons(actions, device, set, () => showDevice(deviceId));
    }
  }, "No keys.");
  const names = Object.keys(attrs).sort();
  fillRows("device-inventory", names.map((name) => ({ name, value: attrs[name] })), "name", (row, a) => {
    cell(row, a.name);
    cell(row, Array.isArray(a.value) ? a.value.join(", ") : a.value);
  }, "The device has sent no inventory yet.");
  historyPager.show(history.total, "deployment");
  fillRows("device-history", history.items, "deployment", (row, e) => {
    row.dataset.deployment = e.deployment.id;
    cell(row, link(`#deployment/${e.deployment.id}`, e.deployment.name));
    cell(row, e.deployment.artifact_name);
    cell(row, when(e.device.created));
    cell(row, statusBadge(e.device.status)).append(e.device.substate ? ` (${e.device.substate})` : "");
    cell(row, e.device.attempts);
    cell(row, statusBadge(e.deployment.status));
    const logCell = cell(row, "");
    if (e.device.log) {
      button(logCell, "Show log", async () => {
        const text = await api("GET", `${API.deployments}/${enc(e.deployment.id)}/devices/${enc(deviceId)}/log`);
        $("history-log-title").textContent = `Log of ${e.deployment.name}`;
        $("history-log-text").textContent = text;
        $("history-log").hidden = false;
      });
    }
  }, "No deployment has reached this device yet.");
}
