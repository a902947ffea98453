// The RainStorm web console: polls the node's JSON API (/api/v1/cmd/COMMAND, the payloads
// `rainctl --json` prints) once a second and redraws. A token given as ?token=... is sent as
// a bearer token on every request (needed off loopback, and for admin actions).
"use strict";

const token = new URLSearchParams(location.search).get("token") || "";

async function api(cmd, args = {}, method = "GET") {
  const q = new URLSearchParams(args).toString();
  const res = await fetch("/api/v1/cmd/" + cmd + (q ? "?" + q : ""), {
    method,
    headers: token ? { Authorization: "Bearer " + token } : {},
  });
  const body = await res.json();
  if (!res.ok) throw new Error(cmd + ": " + (body.error ? body.error.message : res.status));
  return body;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function fill(table, rows) {
  const body = document.querySelector("#" + table + " tbody");
  body.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    tr.append(...cells);
    return tr;
  }));
}

async function refresh() {
  const [mem, files, jobs] = await Promise.all([
    api("list_mem"), api("hydfs.lsall"), api("job.list"),
  ]);
  fill("members", mem.members.map((m) => [
    cell(m.id), cell(m.state, "state-" + m.state), cell(m.incarnation, "num"), cell(m.ring_id),
  ]));
  fill("files", files.files.map((f) => [
    cell(f.name), cell(f.size, "num"), cell(f.file_id), cell([].concat(f.stored_on).join(", ")),
  ]));
  fill("joblist", jobs.jobs.map((j) => [
    cell(j.job), cell(j.name), cell(j.state, "state-" + j.state), cell(j.stages, "num"),
    cell(j.tasks, "num"), cell((j.elapsed_ms / 1000).toFixed(1) + " s", "num"),
  ]));
}

async function loop() {
  const status = document.getElementById("status");
  try {
    await refresh();
    status.dataset.state = "live";
    status.textContent = "live " + new Date().toLocaleTimeString();
  } catch (e) {
    status.dataset.state = "error";
    status.textContent = e.message;
  }
  setTimeout(loop, 1000);
}

loop();
