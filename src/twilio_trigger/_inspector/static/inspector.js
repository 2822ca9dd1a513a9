// The list page: polls /api/events and writes every value with textContent,
// never as HTML, so that what a webhook carried stays text.
"use strict";

const tbody = document.getElementById("events");
const form = document.getElementById("filters");
const note = document.getElementById("note");

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

async function replay(ids) {
  const response = await fetch("/api/replay", {
    method: "POST",
    // The header is what a cross-site form cannot send: the server wants it.
    headers: {"Content-Type": "application/json", "X-Inspector": "replay"},
    body: JSON.stringify(ids ? {ids} : {}),
  });
  if (response.ok) {
    const answer = await response.json();
    note.textContent = answer.replayed + " replayed";
  } else {
    note.textContent = "replay refused (" + response.status + ")";
  }
  refresh();
}

function row(event) {
  const tr = document.createElement("tr");
  tr.className = event.outcome;
  tr.dataset.id = event.id;
  const link = document.createElement("a");
  link.href = "/events/" + encodeURIComponent(event.id);
  link.textContent = event.id;
  const first = document.createElement("td");
  first.appendChild(link);
  // The time of day; the whole UTC timestamp on hover.
  const received = cell((event.received_at || "").slice(11, 23));
  received.title = event.received_at || "";
  tr.append(first, received, cell(event.kind), cell(event.status),
    cell(event.sid), cell(event.callback), cell(event.outcome.replace("_", " "), "outcome"),
    cell(event.duration_ms == null ? "" : event.duration_ms.toFixed(1) + " ms"),
    cell(event.attempts), cell(event.error, "error"));
  const last = document.createElement("td");
  if (event.outcome === "dead_letter") {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Replay";
    button.className = "replay";
    button.addEventListener("click", () => replay([event.id]));
    last.appendChild(button);
  }
  tr.appendChild(last);
  return tr;
}

async function refresh() {
  const query = new URLSearchParams(new FormData(form));
  const response = await fetch("/api/events?" + query);
  if (!response.ok) return;
  const data = await response.json();
  for (const [name, value] of Object.entries(data.counters)) {
    const element = document.getElementById(name);
    if (element) element.textContent = value;
  }
  tbody.replaceChildren(...data.events.map(row));
}

// The filters apply as they change: Enter must not submit the form away.
form.addEventListener("submit", event => event.preventDefault());
form.addEventListener("input", refresh);
document.getElementById("replay-all").addEventListener("click", () => replay(null));
refresh();
setInterval(refresh, 1000);
