// pyupdate web UI: one page over the management API (docs/management-api.md), no build
// step, no framework. The user's JWT lives in sessionStorage; every value from the
// server is shown as text, never parsed as HTML. The page asks the server who the user
// is and with which role (GET .../users/me) and shows no button the role would be
// refused (403). This module logs in and out and picks the view from the URL's hash.
import { $, ADMIN, API, RELEASE, SHORT, api, can, report, say, session, token } from "./lib.js";
import { showOverview } from "./overview.js";
import { setDeviceStatus, showDevice, showDevices } from "./devices.js";
import { showArtifacts, upload } from "./artifacts.js";
import { setDeploymentFilter, showDeployment, showDeployments } from "./deployments.js";
import { setUpRollout, showRollout } from "./rollout.js";
import { setUpWebhooks, showWebhooks } from "./webhooks.js";
import { resetAuditPage, showAudit } from "./audit.js";

const REFRESH_MS = 5000;
// view -> [show(argument), least role or null, menu entry it belongs to, refreshes]
const VIEWS = {
  overview: [showOverview, null, "overview", true],
  devices: [(status) => { setDeviceStatus(status || ""); return showDevices(); }, null, "devices", true],
  device: [showDevice, null, "devices", true],
  artifacts: [showArtifacts, null, "artifacts", true],
  deployments: [(status) => { setDeploymentFilter(status || ""); return showDeployments(); }, null, "deployments", true],
  deployment: [showDeployment, null, "deployments", true],
  rollout: [showRollout, RELEASE, "rollout", false],  // a form: refreshing would fight the user
  webhooks: [showWebhooks, ADMIN, "webhooks", true],
  audit: [showAudit, ADMIN, "audit", true],
};
let refreshTimer = null;

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
    session.me = null;
    form.reset();
    say("");
    route();
  } catch (err) {
    say(`Login failed: ${err.message}`, true);
  }
}

function logout(text = "") {
  sessionStorage.removeItem("pyupdate-token");
  session.me = null;
  route();
  say(text, Boolean(text));
}

// Who is logged in, with which role: decides which controls the page shows.
async function whoAmI() {
  if (!session.me) session.me = await api("GET", API.me);
  const me = session.me;
  $("whoami").textContent = `${me.email} (${SHORT[me.roles[0]] || me.roles[0]})`;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    const least = VIEWS[link.dataset.view][1];
    link.hidden = least !== null && !can(least);
  }
  $("upload-form").hidden = !can(RELEASE);
}

// "#device/<id>" -> ["device", "<id>"]; an unknown or forbidden view is the overview
function parseHash() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const cut = hash.indexOf("/");
  let [view, arg] = cut < 0 ? [hash, undefined] : [hash.slice(0, cut), hash.slice(cut + 1)];
  if (!(view in VIEWS) || ((view === "device" || view === "deployment") && !arg)) view = "overview";
  const least = VIEWS[view][1];
  if (least !== null && !can(least)) [view, arg] = ["overview", undefined];
  return [view, arg];
}

async function route() {
  clearTimeout(refreshTimer);
  const loggedIn = Boolean(token());
  $("nav").hidden = !loggedIn;
  $("login").hidden = loggedIn;
  try {
    if (loggedIn) await whoAmI();
  } catch (err) {
    report(err);
    return;
  }
  const [view, arg] = parseHash();
  for (const name of Object.keys(VIEWS)) $(name).hidden = !loggedIn || name !== view;
  const menu = VIEWS[view][2];
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    const here = link.dataset.view === menu;
    link.classList.toggle("active", here);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!loggedIn) return;
  const [show, , , refreshes] = VIEWS[view];
  try {
    await show(arg);
  } catch (err) {
    report(err);
  }
  if (token() && refreshes) refreshTimer = setTimeout(route, REFRESH_MS);
}

session.onLogout = logout;
session.refresh = route;
$("login-form").addEventListener("submit", login);
$("upload-form").addEventListener("submit", upload);
$("device-status").addEventListener("change", (e) => {
  location.hash = e.target.value ? `#devices/${e.target.value}` : "#devices";
});
$("deployment-status").addEventListener("change", (e) => {
  location.hash = e.target.value ? `#deployments/${e.target.value}` : "#deployments";
});
$("audit-form").addEventListener("submit", (event) => { event.preventDefault(); resetAuditPage(); say(""); route(); });
$("logout").addEventListener("click", () => logout());
setUpRollout();
setUpWebhooks();
window.addEventListener("hashchange", () => {
  // a message about a creation stays for the page it leads to, once
  if (session.keepMessage) session.keepMessage = false;
  else say("");
  window.scrollTo(0, 0);
  route();
});
route();
