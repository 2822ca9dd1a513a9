// The list page: polls /api/events and writes every value with textContent,
// never as HTML, so that what a webhook carried stays text.
"use strict";

const tbody = document.getElementById("events");
const form = document.getElementById("filters");
const note = document.getElementById("note");
const searchError = document.getElementById("search-error");
const older = document.getElementById("older");
const newest = document.getElementById("newest");
const scanNote = document.getElementById("scan-note");
// The page of older rows this address asks for, if any: kept until a filter changes.
let before = new URLSearchParams(location.search).get("before") || "";
// How many rows a page holds, when the address says (the API's limit).
const pageSize = new URLSearchParams(location.search).get("limit") || "";
// What a SID is: letters and digits; only such a SID links to its timeline.
const SID = /^[A-Za-z0-9]{1,64}$/;

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
  // The SID links to its timeline.
  const sid = cell(SID.test(event.sid || "") ? "" : event.sid);
  if (SID.test(event.sid || "")) {
    const timeline = document.createElement("a");
    timeline.href = "/sids/" + encodeURIComponent(event.sid);
    timeline.textContent = event.sid;
    timeline.className = "sid";
    sid.appendChild(timeline);
  }
  tr.append(first, received, cell(event.kind), cell(event.status),
    sid, cell(event.callback), cell(event.outcome.replace("_", " "), "outcome"),
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

// The filters the form holds, without the blank ones: what the address says.
function filters() {
  const query = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (String(value).trim()) query.set(name, value);
  }
  if (pageSize) query.set("limit", pageSize);
  return query;
}

async function refresh() {
  const query = filters();
  const shown = new URLSearchParams(query);
  if (before) query.set("before", before);
  const response = await fetch("/api/events?" + query);
  if (response.status === 400) {
    // A filter that cannot be used: say why, and list nothing rather than everything.
    searchError.textContent = await response.text();
    searchError.hidden = false;
    tbody.replaceChildren();
    older.hidden = true;
    return;
  }
  if (!response.ok) return;
  searchError.hidden = true;
  const data = await response.json();
  older.hidden = data.next_before == null;
  if (data.next_before != null) {
    const next = new URLSearchParams(shown);
    next.set("before", data.next_before);
    older.href = "/?" + next;
  }
  newest.hidden = !before;
  newest.href = "/?" + shown;
  scanNote.hidden = data.scanned_all !== false;
  showCounters(data.counters);
  showPaused(data.paused);
  tbody.replaceChildren(...data.events.map(row));
}

// The counters at the top: the inbox's (every process, since it began counting),
// or this process's when the inbox keeps none; a count not known shows "–".
const COUNTERS = ["received", "handled", "failed_attempts", "dead_lettered", "replayed",
  "pending", "running", "dead_letters", "duplicates"];
const counted = document.getElementById("counted");

function showCounters(counters) {
  for (const name of COUNTERS) {
    const element = document.getElementById(name);
    const value = counters[name];
    if (element) element.textContent = value == null ? "–" : String(value);
  }
  const since = counters.since ? " since " + shownTime(counters.since) : "";
  counted.textContent = counters.scope === "inbox"
    ? "Counted by the inbox, for every process" + since +
      "; duplicates: this process, since it started."
    : "This process, since start" + since + " (the inbox keeps no counters).";
}

// Dispatch paused: the banner says so, and Resume is offered instead of Pause.
const pausedBanner = document.getElementById("paused-banner");
const pauseButton = document.getElementById("pause");
const resumeButton = document.getElementById("resume");
const dispatchNote = document.getElementById("dispatch-note");

function showPaused(paused) {
  pausedBanner.hidden = !paused;
  pauseButton.hidden = paused;
  resumeButton.hidden = !paused;
}

async function setPaused(paused) {
  const response = await fetch("/api/dispatch", {
    method: "POST",
    // The header is what a cross-site form cannot send: the server wants it.
    headers: {"Content-Type": "application/json", "X-Inspector": "dispatch"},
    body: JSON.stringify({paused}),
  });
  if (response.ok) {
    const answer = await response.json();
    showPaused(answer.paused);
    dispatchNote.textContent = answer.paused ? "dispatch paused" : "dispatch resumed";
  } else {
    dispatchNote.textContent = "refused (" + response.status + ")";
  }
  refresh();
}
pauseButton.addEventListener("click", () => setPaused(true));
resumeButton.addEventListener("click", () => setPaused(false));

// The filters apply as they change, and the address follows them (without
// reloading the page), so that it can be shared; a change starts from the newest.
function changed(event) {
  if (event) event.preventDefault();
  before = "";
  const query = filters().toString();
  history.replaceState(null, "", query ? "/?" + query : "/");
  refresh();
}
form.addEventListener("submit", changed);
form.addEventListener("input", () => changed(null));
document.getElementById("replay-all").addEventListener("click", () => replay(null));
refresh();
setInterval(refresh, 1000);

// Bulk replay of what the search finds: "Replay these N" (N counted by the server,
// without replaying), then "Replay N events? Confirm", then what was replayed.
// The search is sent as the form holds it; the server checks it as /api/events does.
const replayThese = document.getElementById("replay-these");
const bulkNote = document.getElementById("bulk-note");
let bulkCount = 0;
let confirming = false;
let replaying = false;
let countedFor = null;  // the search and dead-letter count the button's N is for

// The filters of the form that are set (without the page's limit).
function searchOf() {
  const search = {};
  for (const [name, value] of new FormData(form)) {
    if (String(value).trim()) search[name] = String(value);
  }
  return search;
}

async function bulk(search, dryRun) {
  const response = await fetch("/api/replay", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Inspector": "replay"},
    body: JSON.stringify(dryRun ? {search, dry_run: true} : {search}),
  });
  return response.ok ? response.json() : null;
}

function showCount() {
  replayThese.hidden = bulkCount === 0;
  replayThese.textContent = confirming
    ? "Replay " + bulkCount + " event" + (bulkCount === 1 ? "" : "s") + "? Confirm"
    : "Replay these " + bulkCount;
  replayThese.classList.toggle("confirm", confirming);
}

// Counts what the search would replay: when the filters change, and when the
// number of dead letters does (the live refresh notices that).  A confirmation
// asked for stands only while the search and its count stay the same.
async function recount() {
  const search = searchOf();
  const filters = JSON.stringify(search);
  const key = filters + "|" + document.getElementById("dead_letters").textContent;
  if (replaying || key === countedFor) return;
  if (countedFor === null || !countedFor.startsWith(filters + "|")) confirming = false;
  countedFor = key;
  const answer = Object.keys(search).length ? await bulk(search, true) : null;
  if (key !== countedFor) return;  // the filters changed meanwhile: a newer count runs
  const count = answer ? answer.count : 0;
  if (count !== bulkCount) confirming = false;
  bulkCount = count;
  showCount();
}

replayThese.addEventListener("click", async () => {
  if (!confirming) {
    confirming = true;
    showCount();
    return;
  }
  confirming = false;
  replaying = true;
  replayThese.hidden = true;
  bulkNote.textContent = "replaying " + bulkCount + "…";
  const answer = await bulk(searchOf(), false);
  replaying = false;
  bulkNote.textContent = answer ? "replayed " + answer.replayed : "replay refused";
  countedFor = null;
  recount();
  refresh();
});
form.addEventListener("input", () => {
  bulkNote.textContent = "";
  recount();
});
setInterval(recount, 1000);
recount();

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
