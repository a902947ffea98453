// The console's log view (daemon/http/README.md "Console"): the live log of a chosen node,
// filtered by a pattern (POSIX basic regular expressions, as grep), like `rainctl logs --follow`.
// Polls log.tail on this node once a second with node=HOST:PORT (this node asks that one), passing
// back the offset it got, so each line shows once. Keeps the last MAX_LINES lines; scrolls along
// while the view is at its bottom. Loaded before console.js; uses its api(), el(), ui and
// shortNode().
"use strict";

const LOG_POLL_MS = 1000;
const MAX_LINES = 500;

const logs = {
  key: "",        // node + pattern + case the offset belongs to
  offset: null,   // where the next log.tail starts; null: the last 16 KiB
  timer: null,
};

function logChoice() {
  return {
    node: document.getElementById("lognode").value,
    pattern: document.getElementById("logpattern").value,
    icase: document.getElementById("logcase").checked,
    paused: document.getElementById("logpause").checked,
  };
}

// The node list follows the members (alive or suspect), keeping the choice.
function syncLogNodes() {
  const select = document.getElementById("lognode");
  const members = (ui.members || []).filter((m) => m.state === "alive" || m.state === "suspect");
  const want = members.map((m) => shortNode(m.id));
  const have = Array.from(select.options).map((o) => o.value);
  if (want.join() === have.join()) return;
  const chosen = select.value;
  select.replaceChildren(...want.map((a) => el("option", { value: a }, a)));
  if (want.includes(chosen)) select.value = chosen;
}

function appendLines(view, lines) {
  const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
  for (const line of lines) {
    // raind's lines: "2026-12-05T02:10:41.334 W admin event=..." (the level after the time).
    const level = (line.split(" ")[1] || "").slice(0, 1);
    view.append(el("div.logline" + (level === "W" || level === "E" ? ".level-" + level : ""),
                   line));
  }
  while (view.childElementCount > MAX_LINES) view.firstElementChild.remove();
  if (atBottom) view.scrollTop = view.scrollHeight;
}

async function logTick() {
  clearTimeout(logs.timer);
  syncLogNodes();
  const c = logChoice();
  const view = document.getElementById("logview");
  const summary = document.getElementById("logs-summary");
  const key = c.node + "\n" + c.pattern + "\n" + c.icase;
  if (key !== logs.key) {  // a new node or filter: start again from the log's last lines
    logs.key = key;
    logs.offset = null;
    view.replaceChildren();
    view.dataset.node = c.node;
    view.dataset.pattern = c.pattern;
  }
  if (c.node && !c.paused) {
    const args = { node: c.node, pattern: c.pattern, flags: c.icase ? "i" : "" };
    if (logs.offset !== null) args.offset = logs.offset;
    try {
      const t = await api("log.tail", args);
      if (key === logs.key) {
        if (t.restarted) appendLines(view, ["-- the log was rotated: from its start --"]);
        appendLines(view, t.lines || []);
        logs.offset = t.next;
        delete view.dataset.error;
        const n = view.childElementCount;
        setText(summary, c.node + " · " + n + (n === 1 ? " line" : " lines") + " shown");
      }
    } catch (e) {
      view.dataset.error = e.code || "error";
      setText(summary, e.message);
    }
  } else {
    setText(summary, c.node ? "paused" : "pick a node");
  }
  logs.timer = setTimeout(logTick, LOG_POLL_MS);
}

document.getElementById("logform").addEventListener("submit", (e) => e.preventDefault());
for (const id of ["lognode", "logpattern", "logcase", "logpause"]) {
  document.getElementById(id).addEventListener("change", logTick);
}
setTimeout(logTick, 300);  // after console.js's first poll filled ui.members
