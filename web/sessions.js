"use strict";
// Parking sessions: the vehicles inside now, and today's entries and exits (GET /sessions), every 5 s.

const REFRESH_MS = 5000;
const FLAG_TEXT = { overdue: "overdue", no_entry: "exit with no entry", no_exit: "entered again, no exit" };

const flags = (s) => el("td", { class: s.flags.length ? "flags bad" : "flags" }, s.flags.map((f) => FLAG_TEXT[f] || f).join(", "));

function todayQuery() {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const form = new FormData($("#filter"));
  const query = new URLSearchParams({ since: midnight.getTime() / 1000, limit: 1000 });
  if (form.get("prefix")) query.set("prefix", form.get("prefix"));
  if (form.get("flagged")) query.set("flagged", "1");
  return query;
}

async function load() {
  const [inside, today] = await Promise.all([api("/sessions?open=1&limit=1000"), api(`/sessions?${todayQuery()}`)]);
  $("#inside-count").textContent = `(${inside.sessions.length})`;
  $("#inside tbody").replaceChildren(...inside.sessions.map((s) => el("tr", {},
    el("td", { class: "plate" }, s.plate), el("td", {}, time(s.entry_at)), el("td", {}, duration(s.inside_s)),
    el("td", {}, s.entry_camera), flags(s))));
  $("#today tbody").replaceChildren(...today.sessions.map((s) => el("tr", {},
    el("td", { class: "plate" }, s.plate), el("td", {}, s.status), el("td", {}, time(s.entry_at)),
    el("td", {}, time(s.exit_at)), el("td", {}, duration(s.dwell_s)), flags(s))));
  $("#csv").href = `/sessions.csv?${todayQuery()}`;
  say(`updated ${new Date().toLocaleTimeString()}`);
}

async function refresh() {
  try { await load(); } catch (err) { say(err.message, true); }
}

$("#filter").addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
setUpLogin(refresh);
(async function init() {
  await refresh();
  setInterval(refresh, REFRESH_MS);
  document.body.dataset.ready = "true";
})();
