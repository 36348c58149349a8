// Artifacts: list, upload (with progress), delete. Uploading and deleting are a
// release manager's.
import { $, API, RELEASE, api, button, can, cell, enc, fillRows, mib, say, token, when } from "./lib.js";

export async function showArtifacts() {
  const artifacts = await api("GET", API.artifacts);
  fillRows("artifact-rows", artifacts, "name", (row, artifact) => {
    cell(row, artifact.name);
    cell(row, artifact.device_types_compatible.join(", "));
    const types = artifact.updates.map((u) => u.type_info.type || "bootstrap").join(", ");
    // a delta: from which image, and whether the server made it (its cache may evict it)
    const base = artifact.artifact_depends["rootfs-image.checksum"];
    const from = artifact.kind === "delta" && typeof base === "string" ? ` from ${base.slice(0, 12)}` : "";
    cell(row, `${types}${from}${artifact.generated ? ", made by the server" : ""}`);
    cell(row, artifact.signed ? "yes" : "no");
    cell(row, mib(artifact.size));
    cell(row, when(artifact.modified));
    const actions = cell(row, "", "actions");
    if (can(RELEASE)) {
      button(actions, "Delete", async () => {
        if (!confirm(`Delete artifact ${artifact.name}?`)) return;
        await api("DELETE", `${API.artifacts}/${enc(artifact.id)}`);
        say(`Artifact ${artifact.name} deleted.`);
        await showArtifacts();
      }, "danger");
    }
  }, "No artifacts yet.");
}

export function upload(event) {
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
