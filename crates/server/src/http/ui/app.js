// Switchboard /ui: lists the flows, draws the chosen one with its live funnel, and shows the
// live session count, refreshing every few seconds. Everything comes from the admin API with
// the admin token as a bearer header; the token arrives once as ?token= and is kept in
// sessionStorage (for this tab only), then dropped from the address bar.
"use strict";

const REFRESH_MS = 3000;
const KEY = "switchboard.adminToken";

function takeToken() {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  if (given) {
    sessionStorage.setItem(KEY, given);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(KEY);
}

let token = takeToken();
let chosen = new URL(window.location.href).hash.slice(1) || null;

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, as) {
  const answer = await fetch(path, {
    headers: { Authorization: "Bearer " + token },
    cache: "no-store",
  });
  if (answer.status === 401) {
    sessionStorage.removeItem(KEY);
    token = null;
    askToken();
    throw new Error("the admin token was refused: give the server's admin_token");
  }
  if (!answer.ok) {
    let message = answer.status + " " + answer.statusText;
    try { message = (await answer.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(path + ": " + message);
  }
  return as === "text" ? answer.text() : answer.json();
}

function askToken() {
  const form = document.getElementById("login");
  form.hidden = false;
  form.onsubmit = (event) => {
    event.preventDefault();
    const value = document.getElementById("token").value.trim();
    if (value) {
      sessionStorage.setItem(KEY, value);
      token = value;
      form.hidden = true;
      refresh();
    }
  };
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawList(flows, reports) {
  const list = document.getElementById("flows");
  list.replaceChildren();
  for (const flow of flows) {
    const report = reports[flow.id];
    const item = element("li", flow.id === chosen ? "chosen" : "");
    item.dataset.flow = flow.id;
    item.append(element("span", "id", flow.id));
    item.append(element("span", "meta", flow.description || ""));
    item.append(element("span", "meta", flow.nodes + " nodes · " + (flow.numbers.join(", ") || "no number")));
    if (report) {
      const live = Math.max(0, report.sessions_started - report.sessions_ended);
      const calls = element("span", "meta calls",
        report.sessions_started + " calls since start · " + live + " not ended");
      item.append(calls);
    }
    item.onclick = () => {
      chosen = flow.id;
      history.replaceState(null, "", "#" + flow.id);
      refresh();
    };
    list.append(item);
  }
}

async function drawFlow(flow, report) {
  document.getElementById("flow-title").textContent = "Flow " + flow.id + " (version " + flow.version + ")";
  const summary = report
    ? report.sessions_started + " calls, " + report.sessions_ended + " ended, since " + report.since
    : "";
  document.getElementById("flow-summary").textContent = summary;
  const svg = await api("/v1/flows/" + encodeURIComponent(flow.id) + "/graph.svg", "text");
  // The SVG is the server's own drawing, with every text escaped.
  document.getElementById("graph").innerHTML = svg;
}

async function refresh() {
  if (!token) {
    askToken();
    return;
  }
  try {
    const [list, sessions] = await Promise.all([
      api("/v1/flows"),
      api("/v1/sessions?limit=0"),
    ]);
    document.getElementById("live-count").textContent = String(sessions.count);
    const reports = {};
    await Promise.all(list.flows.map(async (flow) => {
      reports[flow.id] = await api("/v1/flows/" + encodeURIComponent(flow.id) + "/report");
    }));
    if (!list.flows.some((f) => f.id === chosen)) {
      chosen = list.flows.length ? list.flows[0].id : null;
    }
    drawList(list.flows, reports);
    const flow = list.flows.find((f) => f.id === chosen);
    if (flow) await drawFlow(flow, reports[flow.id]);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    showError("");
  } catch (error) {
    showError(String(error.message || error));
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
