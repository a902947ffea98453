// The RainStorm web console (daemon/http/README.md "Console"). Polls the node's JSON API
// (/api/v1/cmd/COMMAND: the payloads `rainctl --json` prints) once a second and updates the
// page in place: the cluster (members, ring), HyDFS files, the job list, and per shown job its
// stage graph, tasks, latency, checkpoints, rebuilds and scaling. job.status and job.tasks are
// asked only for the shown jobs: the running ones and those picked in the list (the job parts are
// in console_jobs.js, the log view in console_logs.js, both loaded first; this file starts the
// polling). A token given
// as ?token=... goes with every request as a bearer token (needed off loopback, and an admin
// one for cancel and kill). Dependency-free; every value reaches the DOM as text, never HTML.
//
// DOM hooks for tests (stable; values are the API's, unformatted):
//   #status[data-state="connecting|live|error"]      the last poll; body[data-stale] when it failed
//   #tokenbar (not hidden) [data-reason="401|403"]    a token is wanted; the form adds ?token=
//   #flash[data-kind="ok|error"]                      the outcome of the last action
//   tr[data-member-id][data-state][data-incarnation][data-ring-id]           #members rows
//   #ring g[data-ring-node][data-ring-id]             members on the ring; line[data-ring-file]
//   tr[data-file][data-size][data-version][data-replicas][data-in-sync]      #files rows
//   tr[data-job-row][data-state][data-selected]       #joblist rows (click: show/hide the job)
//   section[data-job="J"][data-state]                 one per shown job, in #jobdetails
//     [data-stage="S"][data-rate-in][data-rate-out][data-tasks]  stages 1..N; the sink is
//                                                    stage N+1 with [data-sink]
//     [data-edge="S->S+1"][data-backpressure][data-level="ok|warn|high"]  the edge out of stage
//                                                    S, by the max backpressure of S's tasks
//                                                    ([data-edge="src->1"][data-level="none"]:
//                                                    the source, unmeasured)
//     [data-task="S.T"][data-run][data-first-run][data-node][data-pid][data-state]
//                    [data-backpressure][data-busy][data-duplicates][data-checkpoints]
//     [data-metric="latency_p50_us|latency_p99_us|latency_samples|output_lines|rebuilds|
//                   duplicates|checkpoints"][data-value]
//     tr[data-rebuild="i"][data-of="S.T"][data-run]  rebuild history, oldest first
//     tr[data-scaling="i"][data-stage]               scaling actions, oldest first
//     tr[data-checkpoint="S.T"]                      per-task checkpoint figures
//     button[data-action="cancel-job|kill-task"]     click once to arm, again within 4 s to act
//   #logview[data-node][data-pattern] > div.logline  the live log of the chosen node, filtered
//                                                    (console_logs.js; log.tail every second)
"use strict";

const POLL_MS = 1000;
const HISTORY = 60;       // rate samples kept per stage for the sparklines
const ARM_MS = 4000;      // an armed action button waits this long for its second click
const LEVELS = [[0.5, "high"], [0.1, "warn"], [0, "ok"]];

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const ui = {
  picked: new Set(params.getAll("job")),  // ended jobs the user chose to show
  history: new Map(),                      // "job/stage" -> recent rates
  failures: 0,
};

// ---------------------------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(cmd, args = {}, method = "GET") {
  const query = new URLSearchParams(args).toString();
  const url = "/api/v1/cmd/" + cmd + (method === "GET" && query ? "?" + query : "");
  const init = { method, headers: {}, cache: "no-store" };
  if (token) init.headers.Authorization = "Bearer " + token;
  if (method !== "GET") {
    init.headers["Content-Type"] = "application/x-www-form-urlencoded";
    init.body = query;
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, "unreachable", "the node does not answer");
  }
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    if (res.ok) throw new ApiError(res.status, "bad_json", cmd + ": the answer is not JSON");
  }
  if (!res.ok) {
    const err = body && body.error ? body.error : { code: "http_" + res.status, message: "" };
    throw new ApiError(res.status, err.code, cmd + ": " + (err.message || res.statusText));
  }
  return body;
}

// ------------------------------------------------------------------------------ DOM helpers

const SVG_NS = "http://www.w3.org/2000/svg";

// el("td.num", {title: "x", data: {task: "1.0"}}, child...): children are nodes or text.
function el(spec, attrs = {}, ...children) {
  if (attrs instanceof Node || typeof attrs !== "object") {
    children.unshift(attrs);
    attrs = {};
  }
  const [tag, ...classes] = spec.split(".");
  const svg = ["svg", "g", "circle", "line", "text", "path", "polyline"].includes(tag);
  const node = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  if (classes.length) node.setAttribute("class", classes.join(" "));
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "data") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : String(c));
  return node;
}

function setText(node, text) {
  const s = String(text);
  if (node.textContent !== s) node.textContent = s;
}

function setData(node, data) {
  for (const [k, v] of Object.entries(data)) {
    const s = String(v);
    if (node.dataset[k] !== s) node.dataset[k] = s;
  }
}

// Keeps parent's children in step with items, keyed: an item's node is made once by create,
// then updated in place (no flicker, hover titles and armed buttons survive a poll).
function sync(parent, items, keyOf, create, update) {
  const old = new Map();
  for (const child of parent.children) old.set(child.dataset.key, child);
  let prev = null;
  items.forEach((item, i) => {
    const key = String(keyOf(item, i));
    let node = old.get(key);
    if (node) old.delete(key);
    else {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item, i);
    const want = prev ? prev.nextSibling : parent.firstChild;
    if (node !== want) parent.insertBefore(node, want);
    prev = node;
  });
  for (const node of old.values()) node.remove();
}

// A table row's cells from values: text, or {text, cls, title}.
function fillRow(tr, cells) {
  while (tr.children.length < cells.length) tr.append(el("td"));
  cells.forEach((c, i) => {
    const td = tr.children[i];
    const v = c !== null && typeof c === "object" ? c : { text: c };
    setText(td, v.text ?? "");
    const cls = v.cls || "";
    if (td.className !== cls) td.className = cls;
    if (v.title) td.title = v.title;
  });
}

function syncRows(tbody, items, keyOf, cellsOf, dataOf) {
  sync(tbody, items, keyOf, () => el("tr"), (tr, item, i) => {
    fillRow(tr, cellsOf(item, i));
    if (dataOf) setData(tr, dataOf(item, i));
  });
}

function panelError(panel, err) {
  const p = document.querySelector("#" + panel + " .panel-error");
  p.hidden = !err;
  setText(p, err ? err.message : "");
}

// ------------------------------------------------------------------------------- formatting

function num(n, digits = 0) {
  return Number(n || 0).toLocaleString("en-US", { maximumFractionDigits: digits });
}

function rate(r) {
  const x = Number(r || 0);
  if (x >= 1e6) return (x / 1e6).toFixed(1) + "M/s";
  if (x >= 1e4) return (x / 1e3).toFixed(0) + "k/s";
  if (x >= 1e3) return (x / 1e3).toFixed(1) + "k/s";
  return x.toFixed(x > 0 && x < 10 ? 1 : 0) + "/s";
}

function bytes(b) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let x = Number(b || 0), u = 0;
  while (x >= 1024 && u < units.length - 1) { x /= 1024; u++; }
  return (u ? x.toFixed(1) : x) + " " + units[u];
}

function duration(ms) {
  const s = Math.max(0, Number(ms || 0)) / 1000;
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 120) return Math.round(s) + " s";
  if (s < 7200) return Math.floor(s / 60) + " m " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " m";
}

function micros(us) {
  const x = Number(us || 0);
  if (x >= 1e6) return (x / 1e6).toFixed(2) + " s";
  if (x >= 1e3) return (x / 1e3).toFixed(1) + " ms";
  return x + " µs";
}

function pct(share) {
  return Math.round(Number(share || 0) * 100) + "%";
}

function clock(ms) {
  return ms ? new Date(Number(ms)).toLocaleTimeString() : "";
}

// Node ids are long ("host:port#stamp"): the part before the stamp, whole in the title.
function shortNode(id) {
  const s = String(id || "");
  return s.split(/[#@]/)[0] || s;
}

// Shorter still where space is tight: the port when every member is on one host.
function tinyNode(id) {
  const s = shortNode(id);
  return ui.oneHost ? s.split(":").pop() : s;
}

function levelOf(bp) {
  return LEVELS.find(([min]) => bp >= min)[1];
}

// ----------------------------------------------------------------------------------- cluster

function renderCluster(mem, files) {
  const members = mem.members || [];
  ui.members = members;  // the log view's node list (console_logs.js)
  ui.oneHost = new Set(members.map((m) => shortNode(m.id).split(":")[0])).size === 1;
  const alive = members.filter((m) => m.state === "alive").length;
  setText(document.getElementById("cluster-summary"),
          alive + " alive of " + members.length + (mem.in_cluster === false ? " · not in a cluster" : ""));
  setText(document.getElementById("self"), "node " + shortNode(mem.self));
  document.getElementById("self").title = mem.self || "";
  const now = Date.now();
  syncRows(document.querySelector("#members tbody"), members, (m) => m.id, (m) => [
    { text: shortNode(m.id), title: m.id },
    { text: m.state, cls: "badge state-" + m.state },
    { text: m.incarnation, cls: "num" },
    { text: m.ring_id, cls: "mono" },
    { text: m.since_ms ? duration(m.since_ms > 1e12 ? now - m.since_ms : m.since_ms) : "",
      cls: "num" },
  ], (m) => ({ memberId: m.id, state: m.state, incarnation: m.incarnation, ringId: m.ring_id,
               self: m.id === mem.self }));
  renderRing(members, files);
}

// A 64-bit ring id (hex) as a turn fraction, from its top 32 bits.
function ringTurn(hex) {
  const top = parseInt(String(hex || "0").replace(/^0x/, "").padStart(16, "0").slice(0, 8), 16);
  return (Number.isFinite(top) ? top : 0) / 2 ** 32;
}

function ringPoint(turn, r) {
  const a = turn * 2 * Math.PI - Math.PI / 2;
  return [120 + r * Math.cos(a), 120 + r * Math.sin(a)];
}

function renderRing(members, files) {
  const svg = document.getElementById("ring");
  if (!svg.firstChild) {
    svg.append(el("circle.ring-line", { cx: 120, cy: 120, r: 80 }), el("g.files"), el("g.nodes"));
  }
  const onRing = members.filter((m) => m.state === "alive" || m.state === "suspect");
  sync(svg.querySelector("g.files"), files, (f) => f.name, () => el("line.ring-file"), (line, f) => {
    const [x1, y1] = ringPoint(ringTurn(f.file_id), 74);
    const [x2, y2] = ringPoint(ringTurn(f.file_id), 86);
    line.setAttribute("x1", x1); line.setAttribute("y1", y1);
    line.setAttribute("x2", x2); line.setAttribute("y2", y2);
    setData(line, { ringFile: f.name });
  });
  sync(svg.querySelector("g.nodes"), onRing, (m) => m.id, (m) => {
    const g = el("g", {}, el("circle", { r: 7 }), el("text"), el("title"));
    return g;
  }, (g, m) => {
    const turn = ringTurn(m.ring_id);
    const [x, y] = ringPoint(turn, 80);
    const [lx, ly] = ringPoint(turn, 104);
    const c = g.querySelector("circle");
    c.setAttribute("cx", x); c.setAttribute("cy", y);
    c.setAttribute("class", "state-" + m.state);
    const t = g.querySelector("text");
    t.setAttribute("x", lx); t.setAttribute("y", ly + 4);
    setText(t, tinyNode(m.id));
    setText(g.querySelector("title"), m.id + " · ring id " + m.ring_id + " · " + m.state);
    setData(g, { ringNode: m.id, ringId: m.ring_id });
  });
}

// ------------------------------------------------------------------------------------ HyDFS

function renderFiles(ls) {
  const files = ls.files || [];
  const total = files.reduce((s, f) => s + Number(f.size || 0), 0);
  const unanswered = (ls.unanswered || []).length;
  setText(document.getElementById("hydfs-summary"), files.length + " files · " + bytes(total) +
          (unanswered ? " · " + unanswered + " node(s) did not answer" : ""));
  syncRows(document.querySelector("#files tbody"), files, (f) => f.name, (f) => [
    { text: f.name, cls: "mono name", title: f.name + "\nfile id " + f.file_id },
    { text: bytes(f.size), cls: "num", title: num(f.size) + " bytes" },
    { text: f.version === undefined ? "" : f.appends + " appends · " + String(f.version).slice(-8),
      cls: f.in_sync === false ? "mono warn-text" : "mono",
      title: "version " + f.version + " (" + f.appends + " appends)" +
             (f.in_sync === false ? " — replicas differ (repair pending)" : "") },
    { text: [].concat(f.stored_on || []).map(tinyNode).join(", "),
      title: [].concat(f.stored_on || []).join("\n") },
  ], (f) => ({ file: f.name, size: f.size, version: f.version ?? "",
               replicas: [].concat(f.stored_on || []).length, inSync: f.in_sync !== false }));
}

// ----------------------------------------------------------------------------------- tokens

function askToken(status, message) {
  const bar = document.getElementById("tokenbar");
  bar.hidden = false;
  bar.dataset.reason = status;
  setText(document.getElementById("token-reason"), status === 403
    ? "This needs an admin token (" + message + ")."
    : "This node wants a token (" + message + ").");
}

function wireTokenBar() {
  const bar = document.getElementById("tokenbar");
  bar.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = document.getElementById("token-input").value.trim();
    const p = new URLSearchParams(location.search);
    if (value) p.set("token", value); else p.delete("token");
    location.search = p.toString();
  });
  setText(document.getElementById("access"), token ? "token given" : "no token: read only");
}

// ------------------------------------------------------------------------------------- poll

async function refresh() {
  const [mem, ls, list] = await Promise.allSettled([
    api("list_mem"), api("hydfs.lsall"), api("job.list"),
  ]);
  const results = [mem, ls, list];
  const auth = results.find((r) => r.reason && r.reason.status === 401);
  if (auth) askToken(401, auth.reason.message);
  const down = results.find((r) => r.reason && r.reason.status === 0);
  if (down || results.every((r) => r.reason)) throw (down || results[0]).reason;
  const files = ls.value ? ls.value.files || [] : [];
  panelError("cluster", mem.reason);
  if (mem.value) renderCluster(mem.value, files);
  panelError("hydfs", ls.reason);
  if (ls.value) renderFiles(ls.value);
  panelError("jobs", list.reason);
  if (list.value) {
    const jobs = (list.value.jobs || []).slice().reverse();  // newest first
    renderJobList(jobs);
    renderJobs(await Promise.all(shownJobs(jobs).map(loadJob)));
  }
  return results.find((r) => r.reason);
}

const poll = {
  timer: null,
  running: false,
  async tick() {
    clearTimeout(poll.timer);
    if (poll.running) return;
    poll.running = true;
    const status = document.getElementById("status");
    try {
      const partial = await refresh();
      status.dataset.state = partial ? "error" : "live";
      setText(status, partial ? "partial: " + partial.reason.message
                              : "live · " + new Date().toLocaleTimeString());
      delete document.body.dataset.stale;
      ui.failures = 0;
    } catch (e) {
      ui.failures++;
      status.dataset.state = "error";
      setText(status, e.message + (ui.failures > 1 ? " (" + ui.failures + " tries)" : ""));
      document.body.dataset.stale = "";
    } finally {
      poll.running = false;
      // Back off while the node is down: 1 s, 2 s, ... at most 5 s.
      poll.timer = setTimeout(poll.tick, POLL_MS * Math.min(5, 1 + ui.failures));
    }
  },
  now() {
    if (!poll.running) poll.tick();
  },
};

wireTokenBar();
poll.tick();
