// Webhooks (admins): the endpoints, a form to add one, delete, and each one's delivery
// log (its last 50 attempts, kept by the server). docs/webhooks.md.
import { $, API, api, button, cell, el, enc, fillRows, say, statusBadge, when } from "./lib.js";

export const EVENTS = [
  "device-provisioned", "device-status-changed", "device-decommissioned", "device-inventory-changed",
  "deployment-created", "deployment-phase-started", "deployment-phase-healthy", "deployment-paused",
  "deployment-resumed", "deployment-aborted", "deployment-finished", "deployment-device-failed",
];
let shownHook = null;

export async function showWebhooks() {
  const hooks = await api("GET", API.integrations);
  fillRows("webhook-rows", hooks, "id", (row, hook) => {
    cell(row, hook.credentials.http.url, "url");
    cell(row, hook.events.length ? hook.events.join(", ") : "every event");
    cell(row, hook.credentials.http.secret_set ? "yes" : "no");
    cell(row, hook.enabled ? "yes" : "no");
    cell(row, hook.pending);
    cell(row, hook.dropped);
    cell(row, hook.description);
    const actions = cell(row, "", "actions");
    button(actions, "Deliveries", () => showDeliveries(hook));
    button(actions, "Delete", async () => {
      if (!confirm(`Delete the webhook to ${hook.credentials.http.url}? Its waiting events go too.`)) return;
      await api("DELETE", `${API.integrations}/${enc(hook.id)}`);
      if (shownHook && shownHook.id === hook.id) { shownHook = null; $("deliveries").hidden = true; }
      say("Webhook deleted.");
      await showWebhooks();
    }, "danger");
  }, "No webhooks yet.");
  if (shownHook) {
    const still = hooks.find((h) => h.id === shownHook.id);
    if (still) await showDeliveries(still);
  }
}

async function showDeliveries(hook) {
  shownHook = hook;
  const attempts = await api("GET", `${API.integrations}/${enc(hook.id)}/deliveries`);
  $("deliveries-title").textContent = `Deliveries to ${hook.credentials.http.url}`;
  fillRows("delivery-rows", attempts.map((a, i) => ({ ...a, row: String(i) })), "row", (row, a) => {
    cell(row, when(a.time));
    cell(row, a.event_type);
    cell(row, a.attempt);
    cell(row, statusBadge(a.outcome));
    cell(row, a.status_code ?? "");
    cell(row, `${a.duration_ms} ms`);
    cell(row, a.error);
  }, "Nothing sent yet.");
  $("deliveries").hidden = false;
}

function randomSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function create(event) {
  event.preventDefault();
  const form = event.target;
  const events = [...form.querySelectorAll("input[name=event]:checked")].map((box) => box.value);
  const body = {
    provider: "webhook",
    credentials: { type: "http", http: { url: $("webhook-url").value.trim(), secret: $("webhook-secret").value.trim() } },
    events,
    description: $("webhook-description").value,
  };
  try {
    await api("POST", API.integrations, { json: body });
    say("Webhook added.");
    form.reset();
    await showWebhooks();
  } catch (err) {
    say(`Webhook not added: ${err.message}`, true);
  }
}

export function setUpWebhooks() {
  $("webhook-events").replaceChildren(...EVENTS.map((name) =>
    el("label", { className: "choice" }, el("input", { type: "checkbox", name: "event", value: name }), ` ${name}`)));
  $("webhook-generate").addEventListener("click", () => { $("webhook-secret").value = randomSecret(); });
  $("webhook-form").addEventListener("submit", create);
}
