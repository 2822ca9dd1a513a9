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

// "2024-05-01T12:34:56.789Z" as "2024-05-01 12:34:56.789 UTC".
function shownTime(iso) {
  return iso ? iso.slice(0, 10) + " " + iso.slice(11, 23) + " UTC" : "";
}

// The Twilio error code with its title, linked to Twilio's page about it.
function errorCode(event) {
  const td = cell("", "error-code");
  if (event.error_code == null) return td;
  const text = event.error_code + (event.error_code_title ? " " + event.error_code_title : "");
  const url = String(event.error_code_url || "");
  if (!url.startsWith("https://www.twilio.com/")) {
    td.textContent = text;
    return td;
  }
  const link = document.createElement("a");
  link.href = url;
  link.rel = "noreferrer noopener";
  link.target = "_blank";
  link.textContent = text;
  td.appendChild(link);
  return td;
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
  // Its date and time, in UTC, as the event's page writes them.
  const received = cell(shownTime(event.received_at), "received");
  received.title = event.received_at || "";
  tr.append(first, received, cell(event.kind), cell(event.status),
    cell(event.sid), cell(event.callback), cell(event.outcome.replace("_", " "), "outcome"),
    cell(event.duration_ms == null ? "" : event.duration_ms.toFixed(1) + " ms"),
    cell(event.attempts), cell(event.error, "error"), errorCode(event));
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

// Refused requests (GET /api/refused): the latest this process refused, newest
// first, and a count per reason; written as text, like the events.
const refusedBody = document.getElementById("refused");
const refusedCounts = document.getElementById("refused-counts");
const refusedSummary = document.getElementById("refused-summary");

function refusedRow(refused) {
  const tr = document.createElement("tr");
  tr.dataset.reason = refused.reason;
  const names = refused.headers.join("\n") +
    (refused.more_headers ? "\nand " + refused.more_headers + " more" : "");
  const request = refused.method == null ? "" : refused.method + " " + refused.path;
  tr.append(cell(refused.at), cell(refused.reason, "reason"),
    cell(refused.status || "closed"), cell(refused.remote), cell(request),
    cell(refused.message), cell(refused.urls.join("\n"), "urls"), cell(names, "names"));
  return tr;
}

async function refreshRefused() {
  const response = await fetch("/api/refused");
  if (!response.ok) return;
  const data = await response.json();
  const counts = Object.entries(data.counts).map(([reason, n]) => reason + ": " + n);
  if (data.kept === 0) {
    refusedCounts.textContent = "not kept (refused_kept is 0)";
  } else if (data.total === 0) {
    refusedCounts.textContent = "none since this process started";
  } else {
    refusedCounts.textContent = data.total + " since this process started (" +
      counts.join(", ") + "); the latest " + data.refused.length + " below";
  }
  refusedSummary.hidden = data.total === 0;
  refusedSummary.firstElementChild.textContent = data.total + " request" +
    (data.total === 1 ? "" : "s") + " refused (" + counts.join(", ") + ")";
  refusedBody.replaceChildren(...data.refused.map(refusedRow));
}

refreshRefused();
setInterval(refreshRefused, 1000);
