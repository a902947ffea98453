// The RainStorm console's jobs (daemon/http/README.md "Console"): the job list, and per shown
// job its stage graph, tasks, metrics, checkpoints, rebuild and scaling histories, and the
// cancel and kill actions. Loaded before console.js, whose helpers (el, sync, api, formatting)
// these functions call; console.js starts the polling. DOM hooks: the list atop console.js.
"use strict";
// ------------------------------------------------------------------------------------- jobs

const ENDED = new Set(["done", "failed", "cancelled"]);

function shownJobs(jobs) {
  return jobs.filter((j) => !ENDED.has(j.state) || ui.picked.has(j.job));
}

function renderJobList(jobs) {
  const running = jobs.filter((j) => !ENDED.has(j.state)).length;
  setText(document.getElementById("jobs-summary"), running + " running · " + jobs.length + " in all");
  const tbody = document.querySelector("#joblist tbody");
  syncRows(tbody, jobs, (j) => j.job, (j) => [
    { text: j.job, cls: "mono" },
    j.name || "",
    { text: j.state, cls: "badge state-" + j.state, title: j.reason || "" },
    { text: j.stages + " × " + j.tasks, cls: "num" },
    { text: j.src + " → " + j.dest, cls: "mono" },
    { text: duration(j.elapsed_ms), cls: "num" },
    [j.exactly_once ? "exactly-once" : "", j.live ? "live" : ""].filter(Boolean).join(" · "),
  ], (j) => ({ jobRow: j.job, state: j.state,
               selected: !ENDED.has(j.state) || ui.picked.has(j.job) }));
  if (!tbody.dataset.wired) {
    tbody.dataset.wired = "1";
    tbody.addEventListener("click", (e) => {
      const tr = e.target.closest("tr[data-job-row]");
      if (!tr) return;
      const id = tr.dataset.jobRow;
      if (ui.picked.has(id)) ui.picked.delete(id); else ui.picked.add(id);
      const p = new URLSearchParams(location.search);
      p.delete("job");
      for (const j of ui.picked) p.append("job", j);
      history.replaceState(null, "", "?" + p.toString());
      poll.now();
    });
  }
}

async function loadJob(j) {
  const [status, tasks] = await Promise.allSettled([
    api("job.status", { job: j.job }),
    api("job.tasks", { job: j.job }),
  ]);
  return { job: j, status: status.value, tasks: tasks.value ? tasks.value.tasks : [],
           error: status.reason || tasks.reason };
}

function renderJobs(loaded) {
  sync(document.getElementById("jobdetails"), loaded, (d) => d.job.job, makeJobSection, updateJob);
}

function makeJobSection(d) {
  const section = el("section.job", { data: { job: d.job.job } },
    el("div.job-head",
      el("h3", el("span.mono.job-id"), el("span.job-name")),
      el("span.badge.job-state"),
      el("span.job-meta"),
      el("span.spacer"),
      el("button.danger", { type: "button", data: { action: "cancel-job" } }, "Cancel job")),
    el("p.job-reason"),
    el("p.panel-error", { hidden: "" }),
    el("div.graph"),
    el("div.metrics"),
    el("div.job-tables",
      el("div.subpanel.checkpoints", el("h4", "Checkpoints"), el("p.hint.ckpt-note"),
        table(["task", "records", "last size", "last write → durable"], "ckpt")),
      el("div.subpanel.rebuilds", el("h4", "Rebuilds"),
        table(["at", "task", "run", "from → to", "took", "reason"], "rebuild")),
      el("div.subpanel.scaling", el("h4", "Scaling"),
        table(["at", "stage", "tasks", "outcome", "took", "reason"], "scale"))),
    el("p.note"));
  section.querySelector("[data-action=cancel-job]").addEventListener("click", (e) =>
    armed(e.currentTarget, "Confirm cancel?", () => cancelJob(d.job.job)));
  return section;
}

function table(headers, cls) {
  return el("table." + cls, {}, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))),
            el("tbody"));
}

function updateJob(section, d) {
  const j = (d.status || d.job);
  setData(section, { state: j.state });
  setText(section.querySelector(".job-id"), j.job);
  setText(section.querySelector(".job-name"), j.name ? " · " + j.name : "");
  const badge = section.querySelector(".job-state");
  setText(badge, j.state);
  badge.className = "badge job-state state-" + j.state;
  setText(section.querySelector(".job-meta"), [
    duration(j.elapsed_ms), j.exactly_once ? "exactly-once" : "at-least-once",
    j.key_groups ? j.key_groups + " key groups" : "", j.autoscale ? "autoscale: " + j.autoscale : "",
  ].filter(Boolean).join(" · "));
  const cancel = section.querySelector("[data-action=cancel-job]");
  cancel.hidden = ENDED.has(j.state);
  gateAdmin(cancel);
  setText(section.querySelector(".job-reason"), j.reason || "");
  const err = section.querySelector(".panel-error");
  err.hidden = !d.error;
  setText(err, d.error ? d.error.message : "");
  if (!d.status) return;
  renderGraph(section.querySelector(".graph"), d.status, d.tasks);
  renderMetrics(section.querySelector(".metrics"), d.status, d.tasks);
  renderCheckpoints(section, d.status, d.tasks);
  renderHistory(section, d.status);
  setText(section.querySelector(".note"), d.status.note || "");
}

// ------------------------------------------------------------------------------ stage graph

// The graph's nodes: the source, stages 1..N (job.status stages_detail) and the sink (the
// task job.tasks lists as stage N+1), each with its tasks.
function graphNodes(st, tasks) {
  const n = (st.stages_detail || []).length;
  const byStage = new Map();
  for (const t of tasks) {
    if (!byStage.has(t.stage)) byStage.set(t.stage, []);
    byStage.get(t.stage).push(t);
  }
  const stages = (st.stages_detail || []).map((s) => ({ ...s, kind: "stage",
                                                        list: byStage.get(s.stage) || [] }));
  const sinkTasks = byStage.get(n + 1) || [];
  const sink = sinkTasks[0] || {};
  stages.push({ kind: "sink", stage: n + 1, op: st.dest, tasks: sinkTasks.length, list: sinkTasks,
                rate_in: sink.rate_in || 0, rate_out: sink.rate_out || 0,
                tuples_in: sink.tuples_in || 0, tuples_out: st.output_lines || 0,
                duplicates: st.sink_duplicates || 0 });
  return stages;
}

function maxBackpressure(tasks) {
  return tasks.reduce((m, t) => Math.max(m, Number(t.backpressure || 0)), 0);
}

function renderGraph(graph, st, tasks) {
  const stages = graphNodes(st, tasks);
  const items = [{ kind: "source", key: "src" }];
  stages.forEach((s, i) => {
    const up = i === 0 ? null : stages[i - 1];
    items.push({ kind: "edge", key: "e" + s.stage, to: s, from: up,
                 rate: up ? up.rate_out : s.rate_in });
    items.push({ kind: s.kind, key: "s" + s.stage, stage: s });
  });
  sync(graph, items, (it) => it.key, makeGraphItem, (node, it) => {
    if (it.kind === "source") updateSource(node, st);
    else if (it.kind === "edge") updateEdge(node, it);
    else updateStage(node, it.stage, st);
  });
}

function makeGraphItem(it) {
  if (it.kind === "source") {
    return el("div.gnode.source", {}, el("div.gtitle", "source"), el("div.mono.src-name"),
              el("div.src-rate"));
  }
  if (it.kind === "edge") {
    const svg = el("svg", { viewBox: "0 0 64 24", width: 64, height: 24, "aria-hidden": "true" },
                   el("line", { x1: 2, y1: 12, x2: 54, y2: 12 }),
                   el("path", { d: "M52,5 L62,12 L52,19 Z" }));
    return el("div.edge", {}, el("span.edge-bp"), svg, el("span.edge-rate"));
  }
  const sink = it.kind === "sink";
  const node = el("div.gnode.stage" + (sink ? ".sink" : ""), {},
    el("div.gtitle", el("span.stage-name"), el("span.mono.stage-op")),
    el("div.stage-rates", el("span.rin"), el("span.rout")),
    el("svg.spark", { viewBox: "0 0 120 24", preserveAspectRatio: "none" }, el("polyline")),
    el("div.stage-counts"),
    el("div.tasks"));
  return node;
}

function updateSource(node, st) {
  setText(node.querySelector(".src-name"), st.src);
  setText(node.querySelector(".src-rate"),
          (st.live && st.input_rate ? "cap " + rate(st.input_rate) + " · " : "") +
          num(st.source_tuples) + " read");
}

function updateEdge(node, it) {
  const measured = it.from !== null;
  const bp = measured ? maxBackpressure(it.from.list) : 0;
  const level = measured ? levelOf(bp) : "none";
  setData(node, { edge: (measured ? it.from.stage : "src") + "->" + it.to.stage, level,
                  backpressure: measured ? bp.toFixed(2) : "" });
  node.title = measured
    ? "stage " + it.from.stage + " → " + (it.to.kind === "sink" ? "sink" : "stage " + it.to.stage) +
      ": output blocked " + pct(bp) + " of the last second (max over stage " + it.from.stage +
      "'s tasks)"
    : "the source: not measured";
  setText(node.querySelector(".edge-bp"), measured ? "bp " + pct(bp) : "");
  setText(node.querySelector(".edge-rate"), rate(it.rate));
}

function updateStage(node, s, st) {
  const sink = s.kind === "sink";
  const live = !ENDED.has(st.state);
  setData(node, { stage: s.stage, rateIn: Number(s.rate_in || 0).toFixed(1),
                  rateOut: Number(s.rate_out || 0).toFixed(1),
                  tasks: s.tasks });
  if (sink) node.dataset.sink = "";
  setText(node.querySelector(".stage-name"), sink ? "sink" : "stage " + s.stage);
  // A path operator shows by its file name (the full command line is the tooltip).
  setText(node.querySelector(".stage-op"), (s.op || "").replace(/^\/\S*\//, ""));
  node.querySelector(".stage-op").title = s.op || "";
  setText(node.querySelector(".rin"), "in " + rate(s.rate_in));
  setText(node.querySelector(".rout"), sink ? num(st.output_lines) + " lines" : "out " + rate(s.rate_out));
  const busy = s.list.reduce((m, t) => Math.max(m, Number(t.busy || 0)), 0);
  setText(node.querySelector(".stage-counts"),
          num(s.tuples_in) + " in · " + num(s.tuples_out) + " out · " + num(s.duplicates) + " dup" +
          (sink ? "" : " · busy " + pct(busy)));
  const hist = remember(st.job + "/" + s.stage, sink ? s.rate_in : s.rate_out, live);
  drawSpark(node.querySelector(".spark polyline"), hist);
  const tasks = s.list.slice().sort((a, b) => a.task - b.task);
  sync(node.querySelector(".tasks"), tasks, (t) => t.stage + "." + t.task, makeTask,
       (el_, t) => updateTask(el_, t, st, sink));
}

function remember(key, value, live) {
  if (!ui.history.has(key)) ui.history.set(key, []);
  const h = ui.history.get(key);
  if (live) {
    h.push(Number(value || 0));
    if (h.length > HISTORY) h.shift();
  }
  return h;
}

function drawSpark(line, hist) {
  const max = Math.max(1, ...hist);
  const pts = hist.map((v, i) => (120 - (hist.length - 1 - i) * (120 / (HISTORY - 1))).toFixed(1) +
                                 "," + (22 - (v / max) * 20).toFixed(1));
  line.setAttribute("points", pts.join(" "));
  line.parentNode.setAttribute("aria-label", "rate, last " + hist.length + " s, peak " + rate(max));
}

function makeTask(t) {
  const kill = el("button.kill", { type: "button", data: { action: "kill-task" } }, "kill");
  kill.addEventListener("click", (e) => {
    const card = e.currentTarget.closest("[data-task]");
    const job = e.currentTarget.closest("[data-job]").dataset.job;
    const [stage, task] = card.dataset.task.split(".");
    armed(e.currentTarget, "confirm?", () => killTask(job, stage, task));
  });
  return el("div.task", {},
    el("div.task-head", el("span.dot"), el("span.mono.task-id"), el("span.task-run"),
       el("span.spacer"), kill),
    el("div.task-where"),
    el("div.task-figs"));
}

function updateTask(card, t, st, sink) {
  const id = t.stage + "." + t.task;
  const rebuilt = Number(t.incarnation) > Number(t.first_run || t.incarnation);
  setData(card, { task: id, run: t.incarnation, firstRun: t.first_run ?? t.incarnation,
                  node: t.node, pid: t.pid, state: t.state,
                  backpressure: Number(t.backpressure || 0).toFixed(2),
                  busy: Number(t.busy || 0).toFixed(2), duplicates: t.duplicates || 0,
                  checkpoints: t.checkpoints || 0, leaving: !!t.leaving, rebuilt });
  card.className = "task" + (rebuilt ? " rebuilt" : "") + (t.leaving ? " leaving" : "");
  card.title = (t.op || "") + (t.reason ? "\n" + t.reason : "") + (t.groups ? "\nkey groups " + t.groups : "") +
               "\nlog " + (t.log || "");
  setText(card.querySelector(".task-id"), id);
  setText(card.querySelector(".task-run"), "run " + t.incarnation + (rebuilt ? " (rebuilt)" : "") +
          (t.leaving ? " · leaving" : ""));
  setText(card.querySelector(".task-where"), shortNode(t.node) + " · pid " + t.pid);
  card.querySelector(".task-where").title = t.node;
  const figs = ["in " + rate(t.rate_in)];
  if (!sink) figs.push("out " + rate(t.rate_out), "busy " + pct(t.busy), "bp " + pct(t.backpressure));
  figs.push("dup " + num(t.duplicates));
  if (st.exactly_once && !sink) figs.push("ckpt " + num(t.checkpoints));
  setText(card.querySelector(".task-figs"), figs.join(" · "));
  const kill = card.querySelector("[data-action=kill-task]");
  kill.hidden = sink || ENDED.has(st.state) || !(t.pid > 0);
  gateAdmin(kill);
  card.querySelector(".dot").className = "dot state-" + t.state;
}

// -------------------------------------------------------------------- metrics and histories

function renderMetrics(box, st, tasks) {
  const ckpts = tasks.reduce((s, t) => s + Number(t.checkpoints || 0), 0);
  const items = [
    ["latency_p50_us", "latency p50", micros(st.latency_p50_us)],
    ["latency_p99_us", "latency p99", micros(st.latency_p99_us)],
    ["latency_samples", "latency samples", num(st.latency_samples)],
    ["output_lines", "output lines", num(st.output_lines)],
    ["duplicates", "duplicates dropped", num(st.duplicates)],
    ["rebuilds", "rebuilds", num(st.rebuilds)],
    ["checkpoints", "checkpoints", st.exactly_once ? num(ckpts) : "off"],
  ];
  const values = { checkpoints: ckpts };
  sync(box, items, (m) => m[0], (m) => el("div.metric", {}, el("span.mvalue"), el("span.mlabel", {}, m[1])),
       (node, m) => {
         setText(node.querySelector(".mvalue"), m[2]);
         setData(node, { metric: m[0], value: values[m[0]] ?? st[m[0]] ?? 0 });
       });
}

function renderCheckpoints(section, st, tasks) {
  const rows = st.exactly_once ? tasks.filter((t) => t.stage <= (st.stages_detail || []).length) : [];
  setText(section.querySelector(".ckpt-note"), st.exactly_once ? ""
          : "exactly-once is off: tasks keep no checkpoints");
  syncRows(section.querySelector("table.ckpt tbody"),
           rows.slice().sort((a, b) => a.stage - b.stage || a.task - b.task),
           (t) => t.stage + "." + t.task, (t) => [
             { text: t.stage + "." + t.task, cls: "mono", title: t.checkpoint || "no file yet" },
             { text: num(t.checkpoints), cls: "num" },
             { text: t.checkpoints ? bytes(t.checkpoint_last_bytes) : "", cls: "num" },
             { text: t.checkpoints ? micros(t.checkpoint_last_us) : "", cls: "num" },
           ], (t) => ({ checkpoint: t.stage + "." + t.task, records: t.checkpoints || 0 }));
}

function renderHistory(section, st) {
  const rebuilds = st.rebuild_history || [];
  syncRows(section.querySelector("table.rebuild tbody"), rebuilds, (r, i) => i, (r) => [
    clock(r.at_ms),
    { text: r.stage + "." + r.task, cls: "mono" },
    { text: r.run, cls: "num" },
    { text: shortNode(r.from) + " → " + shortNode(r.to), title: r.from + " → " + r.to },
    { text: r.took_ms + " ms", cls: "num" },
    r.reason,
  ], (r, i) => ({ rebuild: i, of: r.stage + "." + r.task, run: r.run }));
  section.querySelector(".rebuilds").dataset.empty = rebuilds.length === 0;
  const scaling = st.scaling || [];
  syncRows(section.querySelector("table.scale tbody"), scaling, (s, i) => i, (s) => [
    clock(s.at_ms),
    { text: s.stage, cls: "num" },
    { text: s.from + " → " + s.to, cls: "num" },
    s.outcome,
    { text: s.took_ms + " ms", cls: "num" },
    s.reason,
  ], (s, i) => ({ scaling: i, stage: s.stage, outcome: s.outcome }));
  section.querySelector(".scaling").dataset.empty = scaling.length === 0;
}

// ---------------------------------------------------------------------------------- actions

// The first click arms the button (its label asks to confirm); a second within ARM_MS acts.
function armed(button, question, act) {
  if (button.dataset.armed) {
    delete button.dataset.armed;
    clearTimeout(button._disarm);
    setText(button, button.dataset.label);
    act();
    return;
  }
  button.dataset.label = button.textContent;
  button.dataset.armed = "1";
  setText(button, question);
  button._disarm = setTimeout(() => {
    delete button.dataset.armed;
    setText(button, button.dataset.label);
  }, ARM_MS);
}

function gateAdmin(button) {
  button.disabled = !token;
  button.title = token ? "" : "needs an admin token (?token=...)";
}

async function cancelJob(job) {
  await act(() => api("job.cancel", { job }, "POST"), (r) => "job " + r.job + ": " + r.state);
}

async function killTask(job, stage, task) {
  await act(() => api("job.kill_task", { job, stage, task }, "POST"),
            (r) => "job " + r.job + ": killed task " + r.stage + "." + r.task + " (pid " + r.pid +
                   " on " + shortNode(r.node) + "); the job rebuilds it");
}

async function act(call, describe) {
  try {
    flash("ok", describe(await call()));
    poll.now();
  } catch (e) {
    if (e.status === 401 || e.status === 403) askToken(e.status, e.message);
    flash("error", e.message);
  }
}

function flash(kind, message) {
  const f = document.getElementById("flash");
  f.hidden = false;
  f.dataset.kind = kind;
  setText(f, message);
  clearTimeout(f._hide);
  f._hide = setTimeout(() => { f.hidden = true; }, 8000);
}
