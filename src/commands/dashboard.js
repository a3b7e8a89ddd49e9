// git parallel dashboard: follow the run's events and swap in the markup the server renders
// (the same functions as the HTML report draw it); text from agents only ever goes in as
// escaped markup from the server or as textContent here.
"use strict";
const B = document.body;
const run = B.dataset.run;
const $ = (id) => document.getElementById(id);
let selected = null;

function banner(text) {
  $("banner").textContent = text;
}

// Replace the element [data-part=kind][data-task=id] with `html`, parsed in its parent's
// context (a table body for a row, SVG for bars and nodes).
function put(kind, id, html) {
  let sel = '[data-part="' + kind + '"]';
  if (id !== null) sel += '[data-task="' + CSS.escape(id) + '"]';
  const el = document.querySelector(sel);
  if (!el) return;
  const holder = el.parentNode.cloneNode(false);
  holder.innerHTML = html;
  el.replaceWith(...holder.childNodes);
  if (kind === "row" && id === selected) mark();
}

function mark() {
  document.querySelectorAll("tr.sel").forEach((r) => r.classList.remove("sel"));
  if (selected === null) return;
  const tr = document.querySelector('tr[data-task="' + CSS.escape(selected) + '"]');
  if (tr) tr.classList.add("sel");
}

async function show(id) {
  selected = id;
  mark();
  $("sel").textContent = id;
  const r = await fetch("/task?run=" + encodeURIComponent(run) + "&task=" + encodeURIComponent(id));
  $("log").textContent = await r.text();
  $("retry").hidden = false;
}

// A big run's page shows one page of its tasks (#paged): when tasks move between states, that
// page is fetched again (at most every two seconds), so a filter such as "running" keeps
// showing the tasks in that state.
let refetching = null;
function refetch() {
  const p = $("paged");
  if (!p || refetching) return;
  refetching = setTimeout(async () => {
    try {
      const q = new URLSearchParams({ run: run, page: p.dataset.page });
      if (p.dataset.state) q.set("state", p.dataset.state);
      const r = await fetch("/rows?" + q.toString());
      if (r.ok) {
        const holder = document.createElement("div");
        holder.innerHTML = await r.text();
        const fresh = holder.querySelector("#paged");
        if (fresh && $("paged")) $("paged").replaceWith(fresh);
        mark();
      }
    } finally {
      // A failed fetch (the dashboard stopped) must not stop the next one.
      refetching = null;
    }
  }, 2000);
}

async function act(what, extra) {
  const r = await fetch("/" + what + "?run=" + encodeURIComponent(run) + (extra || ""), { method: "POST" });
  $("msg").textContent = await r.text();
}

if (run !== undefined) {
  const view = B.dataset.view === "all" ? "&view=all" : "";
  const es = new EventSource("/events?run=" + encodeURIComponent(run) + "&tip=" + B.dataset.tip + view);
  es.addEventListener("update", (e) => {
    const u = JSON.parse(e.data);
    B.dataset.tip = u.tip;
    B.dataset.status = u.status;
    // The tab says how the run is doing (only updates set it: the page as served says less).
    document.title = "git-parallel run " + run + ": " + u.status + ", " + u.done + " done";
    put("head", null, u.head);
    put("axis", null, u.axis);
    const plot = document.querySelector('[data-part="plot"]');
    if (plot) plot.setAttribute("transform", u.transform);
    for (const [kind, id, html] of u.parts) put(kind, id, html);
    if (u.moved) refetch();
    if (selected !== null && Object.prototype.hasOwnProperty.call(u.tasks, selected)) show(selected);
  });
  es.addEventListener("gone", (e) => {
    banner(JSON.parse(e.data).message);
    es.close();
  });
  es.addEventListener("reload", () => location.reload());
  // On the body: a big run's table is drawn anew as its tasks move.
  B.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-task]");
    if (tr) show(tr.dataset.task);
  });
  $("cancel").addEventListener("click", () => act("cancel"));
  $("retry").addEventListener("click", () => act("retry", "&task=" + encodeURIComponent(selected)));
} else {
  const es = new EventSource("/events");
  es.addEventListener("runs", (e) => put("runs", null, JSON.parse(e.data).html));
}
