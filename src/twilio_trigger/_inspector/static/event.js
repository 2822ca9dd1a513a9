// The page of one event: its Replay button.  The event's id comes from the
// button's data-id, so that this file is the same for every event.
"use strict";

const button = document.getElementById("replay");
const note = document.getElementById("note");

button.addEventListener("click", async () => {
  const response = await fetch("/api/replay", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Inspector": "replay"},
    body: JSON.stringify({ids: [Number(button.dataset.id)]}),
  });
  note.textContent = response.ok ? "replayed" : "refused";
  // Long enough for a worker to take the entry, so that the reload shows it.
  setTimeout(() => location.reload(), 1000);
});
