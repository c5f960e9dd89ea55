"use strict";
// Plate lists: create them, add and remove plates, import and export CSV (GET/PUT/POST/DELETE /lists).

let current = null; // the list shown

const listPath = (name) => `/lists/${encodeURIComponent(name)}`;

async function loadLists() {
  const { lists } = await api("/lists");
  $("#lists tbody").replaceChildren(...lists.map((l) => el("tr", {},
    el("td", {}, el("a", { href: `#${l.name}`, onclick: () => show(l.name) }, l.name)),
    el("td", {}, l.description), el("td", {}, l.plates))));
}

async function show(name) {
  current = name;
  const { plates } = await api(listPath(name));
  $("#list-view").hidden = false;
  $("#list-title").textContent = `List ${name}: ${plates.length} plate${plates.length === 1 ? "" : "s"}`;
  $("#export").href = `${listPath(name)}/csv`;
  $("#plates tbody").replaceChildren(...plates.map((p) => el("tr", {},
    el("td", { class: "plate" }, p.plate), el("td", {}, p.label), el("td", {}, p.valid_from || ""),
    el("td", {}, p.valid_until || ""),
    el("td", {}, el("button", { type: "button", "aria-label": `Remove ${p.plate}`, onclick: () => remove(p.plate) }, "Remove")))));
}

async function refresh(message) {
  await loadLists();
  if (current) await show(current);
  if (message) say(message);
}

const guarded = (work) => async (event) => {
  event?.preventDefault?.();
  try { await work(event); } catch (err) { say(err.message, true); }
};

async function remove(plate) {
  try {
    await api(`${listPath(current)}/plates/${encodeURIComponent(plate)}`, { method: "DELETE" });
    await refresh(`${plate} removed`);
  } catch (err) { say(err.message, true); }
}

$("#new-list").addEventListener("submit", guarded(async (event) => {
  const form = new FormData(event.target);
  await api(listPath(form.get("name")), { method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ description: form.get("description") }) });
  current = form.get("name");
  event.target.reset();
  await refresh(`list ${current} made`);
}));

$("#add-plate").addEventListener("submit", guarded(async (event) => {
  const entry = Object.fromEntries(new FormData(event.target));
  const { plates } = await api(`${listPath(current)}/plates`, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(entry) });
  event.target.reset();
  await refresh(`${plates[0].plate} added to ${current}`);
}));

$("#import").addEventListener("change", guarded(async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const replace = $("#replace").checked;
  const { imported } = await api(`${listPath(current)}/csv`, { method: replace ? "PUT" : "POST",
    headers: { "Content-Type": "text/csv" }, body: await file.text() });
  event.target.value = "";
  await refresh(`${imported} plate${imported === 1 ? "" : "s"} imported into ${current}`);
}));

$("#delete-list").addEventListener("click", guarded(async () => {
  if (!confirm(`Delete the list ${current} and its plates?`)) return;
  await api(listPath(current), { method: "DELETE" });
  const gone = current;
  current = null;
  $("#list-view").hidden = true;
  await refresh(`list ${gone} deleted`);
}));

setUpLogin(() => refresh());
(async function init() {
  try {
    await loadLists();
    const wanted = decodeURIComponent(location.hash.slice(1));
    if (wanted) await show(wanted);
  } catch (err) { say(err.message, true); }
  document.body.dataset.ready = "true";
})();
