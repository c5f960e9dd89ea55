"use strict";
// What the dashboard's Lists and Sessions pages share: the token (traded once for the session cookie,
// as the live page does), JSON requests that say what went wrong, and how times are shown.

const $ = (sel, root = document) => root.querySelector(sel);

// An element with text children (never HTML: plates and labels are operators' input).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  node.append(...children.map((c) => (c instanceof Node ? c : String(c ?? ""))));
  return node;
}

function say(message, isError = false) {
  const status = $("#status");
  status.textContent = message;
  status.className = isError ? "state error" : "state";
}

// The saved token (the live page's field keeps it too) is traded for the cookie when a request is refused.
function savedToken() {
  try { return JSON.parse(localStorage.getItem("eparking.token")) || ""; } catch { return ""; }
}

async function openSession(token) {
  const response = await fetch("/session", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
  return response.ok;
}

// fetch(), then the parsed JSON (or text); an HTTP error throws with the server's message.
async function api(path, options = {}, retried = false) {
  const response = await fetch(path, options);
  if (response.status === 401 && !retried && savedToken() && (await openSession(savedToken()))) {
    return api(path, options, true);
  }
  if (response.status === 401) {
    $("#login").hidden = false;
    throw new Error("a token is needed: enter it above");
  }
  const type = response.headers.get("Content-Type") || "";
  const data = response.status === 204 ? null : type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new Error((data && data.error && data.error.message) || `HTTP ${response.status}`);
  return data;
}

function setUpLogin(onReady) {
  $("#login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const token = $("#login input").value;
    if (await openSession(token)) {
      localStorage.setItem("eparking.token", JSON.stringify(token));
      $("#login").hidden = true;
      onReady();
    } else say("the token was refused", true);
  });
}

const time = (t) => (t ? new Date(t * 1000).toLocaleString() : "–");

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}
