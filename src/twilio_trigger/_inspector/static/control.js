// Dispatch control on the list page: each callback's limits and breaker, from
// /api/limits every second, a form that sets or clears a callback's limit, and a
// "Close breaker" button on each open one.  Every value is written with
// textContent, never as HTML.
"use strict";

(() => {
  const body = document.getElementById("limits");
  const table = document.getElementById("limits-table");
  const none = document.getElementById("limits-none");
  const banner = document.getElementById("breaker-banner");
  const form = document.getElementById("limit-form");
  const callbackInput = document.getElementById("limit-callback");
  const limitInput = document.getElementById("limit-text");
  const note = document.getElementById("limit-note");

  // Seconds since the epoch as "2024-05-01 12:34:56.789 UTC", as the rows show times.
  function dated(seconds) {
    const iso = new Date(seconds * 1000).toISOString();
    return iso.slice(0, 10) + " " + iso.slice(11, 23) + " UTC";
  }

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "–" : String(text);
    if (cls) td.className = cls;
    return td;
  }

  // "open since <time>, 5 failures in a row, one event tried at <time>".
  function breakerText(breaker) {
    const failures = breaker.failures + " failure" + (breaker.failures === 1 ? "" : "s");
    const next = breaker.trying
      ? "one event being tried"
      : "one event tried at " + dated(breaker.until);
    return "open since " + dated(breaker.opened_at) + ", " + failures + " in a row, " + next;
  }

  function row(item) {
    const tr = document.createElement("tr");
    tr.dataset.callback = item.callback;
    const breaker = item.breaker;
    tr.className = breaker ? "breaker-open" : "";
    const state = document.createElement("td");
    state.className = "breaker";
    if (breaker) {
      const text = document.createElement("span");
      text.className = "open";
      text.textContent = breakerText(breaker);
      state.appendChild(text);
      if (breaker.error) {
        const error = document.createElement("div");
        error.className = "error";
        error.textContent = "last error: " + breaker.error;
        state.appendChild(error);
      }
    } else {
      state.textContent = "closed";
    }
    const actions = document.createElement("td");
    if (breaker) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "close-breaker";
      button.textContent = "Close breaker";
      button.addEventListener("click", () => closeBreaker(item.callback));
      actions.appendChild(button);
    }
    tr.append(cell(item.callback, "callback"), cell(item.option, "option"),
      cell(item.kept, "kept"), cell(item.in_force, "in-force"), state, actions);
    return tr;
  }

  function show(view) {
    const rows = view.callbacks;
    body.replaceChildren(...rows.map(row));
    table.hidden = rows.length === 0;
    none.hidden = rows.length > 0;
    const open = rows.filter(item => item.breaker);
    banner.hidden = open.length === 0;
    const text = open.length === 0 ? "" : "Breaker open: " + open.map(item =>
      item.callback + " (" + breakerText(item.breaker) + ")").join("; ") +
      ". Its events wait in the inbox; Close breaker under Dispatch control dispatches them now.";
    // Written only when it changes: an alert is read out each time it is.
    if (banner.textContent !== text) banner.textContent = text;
  }

  async function refresh() {
    const response = await fetch("/api/limits");
    if (response.ok) show(await response.json());
  }

  // A change: the server answers the view after it, or a 400 that says why.
  async function change(path, header, request) {
    const response = await fetch(path, {
      method: "POST",
      // The header is what a cross-site form cannot send: the server wants it.
      headers: {"Content-Type": "application/json", "X-Inspector": header},
      body: JSON.stringify(request),
    });
    if (response.ok) {
      const view = await response.json();
      show(view);
      return view;
    }
    note.textContent = response.status === 400
      ? (await response.text()).trim()
      : "refused (" + response.status + ")";
    return null;
  }

  function kept(view, callback) {
    const item = view.callbacks.find(found => found.callback === callback);
    return item && item.kept;
  }

  async function setLimit(clear) {
    const callback = callbackInput.value.trim();
    const request = clear ? {callback, clear: true} : {callback, limit: limitInput.value};
    note.textContent = "";
    const view = await change("/api/limits", "limits", request);
    if (!view) return;
    const now = kept(view, callback);
    note.textContent = now
      ? callback + ": " + now + " (kept in the inbox; every process follows)"
      : callback + ": no limit kept in the inbox; the listener's limits option rules";
    if (!clear) limitInput.value = "";
  }

  async function closeBreaker(callback) {
    note.textContent = "";
    const view = await change("/api/breakers", "breaker", {close: callback});
    if (!view) return;
    note.textContent = view.was_open
      ? "the breaker of " + callback + " is closed: its events are dispatched again"
      : "the breaker of " + callback + " was not open";
  }

  form.addEventListener("submit", event => {
    event.preventDefault();
    setLimit(false);
  });
  document.getElementById("limit-clear").addEventListener("click", () => setLimit(true));
  refresh();
  setInterval(refresh, 1000);
})();
