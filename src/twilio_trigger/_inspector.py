"""The event inspector: a small web page over the inbox, to look instead of grep.

It lists recent events with what became of them, shows one event whole (its
parameters, its attempts with their errors and tracebacks), and replays dead
letters.  The inbox is the record, whichever process wrote it (SQLite or
Redis); :class:`Activity` adds what this process saw of each attempt (the
callback, the outcome, how long it took) and a few counters.

It is served on a port of its own, on loopback unless told otherwise, and then
only with a token: events hold phone numbers and message bodies.  Server-rendered
HTML and a few lines of JavaScript that poll ``/api/events``: no build step.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from ._answers import answer
from ._asgi import send_answer
from ._delivery import Delivery
from ._dispatch import Outcome, Result, describe_error
from ._events import TwilioEvent
from ._observe import Attempt, Observer
from ._routing import callback_for, to_event
from .inbox import Entry, State

__all__ = ["Activity", "InspectorApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_COOKIE = "twilio_trigger_inspector"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_MAX_ROWS = 500
_MAX_BODY = 64 * 1024


class AttemptRecord(NamedTuple):
    """One attempt at an inbox entry, as this process saw it."""

    at: float
    number: int
    outcome: str
    callback: str | None
    milliseconds: float | None
    error: str | None  # with its traceback


class Activity(Observer):
    """Counters since the start, and the attempts at each inbox entry (the latest ones)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.counts = {"received": 0, "handled": 0, "failed": 0, "duplicates": 0}
        self._limit = limit
        self._attempts: OrderedDict[int, list[AttemptRecord]] = OrderedDict()

    def received(self, event: TwilioEvent) -> None:
        self.counts["received"] += 1

    def finished(self, event: TwilioEvent, result: Result, attempt: Attempt | None = None) -> None:
        outcome = result.outcome
        if outcome is Outcome.DUPLICATE:
            self.counts["duplicates"] += 1
        elif not outcome.ok:
            self.counts["failed"] += 1
        elif outcome is Outcome.HANDLED:
            self.counts["handled"] += 1
        if attempt is None or attempt.entry is None:
            return
        error = None if result.error is None else describe_error(result.error)
        milliseconds = None if result.seconds is None else round(result.seconds * 1000, 3)
        record = AttemptRecord(
            time.time(), attempt.number, outcome.value, result.callback, milliseconds, error
        )
        history = self._attempts.pop(attempt.entry, [])
        history.append(record)
        self._attempts[attempt.entry] = history[-20:]
        while len(self._attempts) > self._limit:
            self._attempts.popitem(last=False)

    def attempts(self, entry_id: int) -> list[AttemptRecord]:
        return list(self._attempts.get(entry_id, ()))


# -- what a row shows ---------------------------------------------------------------
def _outcome(entry: Entry, last: AttemptRecord | None) -> str:
    if entry.state is State.DEAD:
        return "dead_letter"
    if entry.state is State.RUNNING:
        return "running"
    if entry.state is State.PENDING:
        return "retrying" if entry.attempts else "pending"
    return last.outcome if last is not None else Outcome.HANDLED.value


def _callback(
    entry: Entry, last: AttemptRecord | None, label: Callable[[TwilioEvent], str | None]
) -> str | None:
    if last is not None and last.callback is not None:
        return last.callback
    event = to_event(entry.params)
    return None if event is None else label(event) or callback_for(event)


def _stamp(moment: float | None) -> str | None:
    if moment is None:
        return None
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment % 1 * 1000):03d}Z"
    )


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else None  # a traceback's last line says what failed


#: The outcomes a filter can ask for, and the entry states that hold them.
_FILTER_STATES: dict[str, tuple[State, ...]] = {
    "handled": (State.DONE,),
    "dead_letter": (State.DEAD,),
    "retrying": (State.PENDING,),
    "pending": (State.PENDING,),
    "running": (State.RUNNING,),
    "failing": (State.PENDING, State.DEAD),
}


class InspectorApp:
    """The inspector as an ASGI application over a listener's delivery."""

    def __init__(
        self,
        delivery: Delivery,
        activity: Activity,
        *,
        token: str | None = None,
        loopback_only: bool = True,
    ) -> None:
        if delivery.inbox is None:
            raise ValueError("the inspector shows an inbox: the listener has none")
        self._delivery = delivery
        self._inbox = delivery.inbox
        self._activity = activity
        self._token: bytes | None = None
        self._cookie: bytes | None = None
        if token is not None:
            self._token = token.encode("utf-8")
            # The cookie holds a digest of the token: ASCII, whatever the token is.
            self._cookie = hashlib.sha256(self._token).hexdigest().encode()
        self._loopback_only = loopback_only

    # -- data ------------------------------------------------------------------------
    def _row(self, entry: Entry) -> dict[str, object]:
        history = self._activity.attempts(entry.id)
        last = history[-1] if history else None
        return {
            "id": entry.id,
            "received_at": _stamp(entry.received_at),
            "kind": entry.kind,
            "status": entry.status,
            "sid": entry.sid,
            "callback": _callback(entry, last, self._delivery.callback_label),
            "outcome": _outcome(entry, last),
            "duration_ms": None if last is None else last.milliseconds,
            "attempts": entry.attempts,
            "error": _first_line(entry.last_error) if entry.state is not State.DONE else None,
        }

    async def _rows(self, query: Mapping[str, list[str]]) -> list[dict[str, object]]:
        def one(name: str) -> str:
            return (query.get(name) or [""])[0].strip()

        outcome, kind, status = one("outcome"), one("kind"), one("status").lower()
        try:
            limit = max(1, min(_MAX_ROWS, int(one("limit") or 100)))
        except ValueError:
            limit = 100
        states = _FILTER_STATES.get(outcome, (None,))
        # Filters the inbox cannot apply itself look further back than the limit.
        exact = not (kind or status) and outcome in ("", "handled", "dead_letter", "running")
        entries = [
            entry
            for state in states
            for entry in await self._inbox.entries(state, limit if exact else _MAX_ROWS)
        ]
        entries.sort(key=lambda entry: entry.id, reverse=True)
        rows = [self._row(entry) for entry in entries]
        rows = [
            row
            for row in rows
            if (not kind or row["kind"] == kind)
            and (not status or str(row["status"] or "").lower() == status)
            and (not outcome or row["outcome"] == outcome or (outcome == "failing"
                 and row["outcome"] in ("retrying", "dead_letter")))
        ]  # fmt: skip
        return rows[:limit]

    async def _counters(self) -> dict[str, int]:
        stats = await self._inbox.backlog()
        return {**self._activity.counts, "dead_letters": stats[State.DEAD]}

    # -- ASGI ------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        headers = {name.lower(): value for name, value in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _answer(send, *refusal)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if self._cookie is not None and "token" in query and scope["method"] == "GET":
            # The link with the token, once (_refusal checked it): keep it in a
            # cookie, not in the address bar.
            cookie = f"{_COOKIE}={self._cookie.decode()}; HttpOnly; SameSite=Strict; Path=/"
            path = scope["path"]
            location = path if path.startswith("/") and not path.startswith("//") else "/"
            await _answer(
                send, 303, b"", "text/plain", (b"location", location.encode("utf-8")),
                (b"set-cookie", cookie.encode("ascii")),
            )  # fmt: skip
            return
        await self._route(scope, receive, send, query)

    def _refusal(
        self, scope: Scope, headers: Mapping[bytes, bytes]
    ) -> tuple[int, bytes, str] | None:
        if self._token is None:
            # Loopback only: refuse names other than loopback ones, so that a page
            # elsewhere cannot reach this through DNS rebinding.
            host = _host_name(headers.get(b"host", b""))
            if self._loopback_only and host not in _LOOPBACK:
                return (
                    421,
                    b"this inspector answers on 127.0.0.1 and localhost only\n",
                    "text/plain",
                )
            return None
        if not self._authorized(headers, scope):
            return 401, _UNAUTHORIZED, "text/html; charset=utf-8"
        return None

    def _authorized(self, headers: Mapping[bytes, bytes], scope: Scope) -> bool:
        """A token in the address must be right even with a good cookie: it becomes one."""
        assert self._token is not None
        assert self._cookie is not None
        query = parse_qs(scope.get("query_string", b"").decode("utf-8", "replace"))
        if "token" in query:
            return hmac.compare_digest(query["token"][0].encode("utf-8"), self._token)
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer ":
            return hmac.compare_digest(authorization[7:].strip(), self._token)
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == _COOKIE.encode():
                # The digest this page set, or the token itself (set by a script).
                return hmac.compare_digest(value, self._cookie) | hmac.compare_digest(
                    value, self._token
                )
        return False

    async def _route(
        self, scope: Scope, receive: Receive, send: Send, query: Mapping[str, list[str]]
    ) -> None:
        method, path = scope["method"], scope["path"]
        if method == "POST":
            if path != "/api/replay":
                await _answer(send, 404, b"not found\n", "text/plain")
                return
            await self._replay(scope, receive, send)
            return
        if method not in ("GET", "HEAD"):
            await _answer(
                send, 405, b"method not allowed\n", "text/plain", (b"allow", b"GET, POST")
            )
            return
        if path == "/":
            await _answer(send, 200, _page().encode("utf-8"), "text/html; charset=utf-8")
        elif path == "/api/events":
            document = {"counters": await self._counters(), "events": await self._rows(query)}
            await _answer(send, 200, json.dumps(document).encode(), "application/json")
        elif path.startswith("/events/") and _is_id(path[8:]):
            entry = await self._inbox.get(int(path[8:]))
            if entry is None:
                await _answer(send, 404, b"no such event\n", "text/plain")
                return
            page = _detail(self._row(entry), entry, self._activity.attempts(entry.id))
            await _answer(send, 200, page.encode("utf-8"), "text/html; charset=utf-8")
        else:
            await _answer(send, 404, b"not found\n", "text/plain")

    async def _replay(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {name.lower(): value for name, value in scope["headers"]}
        # A header a cross-site form cannot send (a script would need CORS,
        # which this server never grants): replays come from this page only.
        if headers.get(b"x-inspector") != b"replay":
            await _answer(send, 403, b"replays come from the inspector's page\n", "text/plain")
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body") or len(body) > _MAX_BODY:
                break
        try:
            request = json.loads(bytes(body) or b"{}")
            ids = request.get("ids")
            if ids is not None and not (
                isinstance(ids, list) and all(isinstance(i, int) for i in ids)
            ):
                raise ValueError
        except (ValueError, AttributeError):
            await _answer(send, 400, b'expected {"ids": [1, 2]} or {}\n', "text/plain")
            return
        replayed = await self._inbox.replay(ids)
        self._delivery.wake()
        await _answer(send, 200, json.dumps({"replayed": replayed}).encode(), "application/json")


def _is_id(text: str) -> bool:
    # ASCII digits only ("²" is a digit to str.isdigit), and no more than fit in 63 bits.
    return text.isascii() and text.isdigit() and len(text) <= 18


def _host_name(header: bytes) -> str:
    """The host of a ``Host`` header, without its port: ``[::1]:8091`` → ``[::1]``."""
    host = header.decode("latin-1").strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.partition(":")[0]


async def _answer(
    send: Send, status: int, body: bytes, content_type: str, *extra: tuple[bytes, bytes]
) -> None:
    await send_answer(
        send, answer(status, body, content_type.encode("latin-1"), *_SECURITY, *extra)
    )


# -- HTML ---------------------------------------------------------------------------
_CSP = (
    b"default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    b"frame-ancestors 'none'"
)
_SECURITY = (
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", _CSP),
    (b"x-frame-options", b"DENY"),
)
_UNAUTHORIZED = (
    b"<!doctype html><title>twilio-trigger inspector</title>"
    b"<p>This inspector needs its token: open it with <code>?token=...</code>.</p>\n"
)
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222}
table{font-size:13px}
h1{font-size:1.3em;margin:0 0 .6em}
.counters{display:flex;gap:1em;margin-bottom:1em}
.counter{border:1px solid #ddd;border-radius:6px;padding:.4em .9em;min-width:7em}
.counter b{display:block;font-size:1.5em}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #eee;vertical-align:top;
  white-space:nowrap}
td.error{white-space:normal}
th{background:#f6f6f6}
tr.handled td.outcome{color:#16794c;font-weight:600}
tr.dead_letter td.outcome,tr.failed td.outcome,tr.timed_out td.outcome{color:#b42318;
  font-weight:600}
tr.retrying td.outcome{color:#b54708;font-weight:600}
td.error{color:#b42318;font-family:ui-monospace,monospace;font-size:12px}
code,pre{font-family:ui-monospace,monospace;font-size:12px}
pre{background:#f8f8f8;padding:.6em;overflow:auto}
.filters{margin-bottom:1em;display:flex;gap:.6em;align-items:center}
button{cursor:pointer}
"""


def _page() -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>twilio-trigger inspector</title><style>{_STYLE}</style></head>
<body>
<h1>twilio-trigger inspector</h1>
<div class="counters">
  <div class="counter">received<b id="received">0</b></div>
  <div class="counter">handled<b id="handled">0</b></div>
  <div class="counter">failed<b id="failed">0</b></div>
  <div class="counter">duplicates<b id="duplicates">0</b></div>
  <div class="counter">dead letters<b id="dead_letters">0</b></div>
</div>
<form class="filters" id="filters" onsubmit="return false">
  <label>kind <select name="kind"><option value="">all</option><option>sms</option>
    <option>call</option><option>recording</option></select></label>
  <label>status <input name="status" size="12" placeholder="any"></label>
  <label>outcome <select name="outcome"><option value="">all</option>
    <option value="handled">handled</option><option value="failing">failing</option>
    <option value="retrying">retrying</option><option value="dead_letter">dead letters</option>
    <option value="pending">pending</option></select></label>
  <button type="button" id="replay-all">Replay all dead letters</button>
  <span id="note"></span>
</form>
<table><thead><tr><th>#</th><th>received (UTC)</th><th>kind</th><th>status</th><th>SID</th>
<th>callback</th><th>outcome</th><th>duration</th><th>attempts</th><th>error</th><th></th></tr>
</thead><tbody id="events"></tbody></table>
<script>
const tbody = document.getElementById("events");
const form = document.getElementById("filters");
function cell(text, cls) {{
  const td = document.createElement("td");
  td.textContent = text == null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}}
async function replay(ids) {{
  const response = await fetch("/api/replay", {{method: "POST",
    headers: {{"Content-Type": "application/json", "X-Inspector": "replay"}},
    body: JSON.stringify(ids ? {{ids}} : {{}})}});
  const answer = await response.json();
  document.getElementById("note").textContent = answer.replayed + " replayed";
  refresh();
}}
document.getElementById("replay-all").onclick = () => replay(null);
async function refresh() {{
  const query = new URLSearchParams(new FormData(form));
  const response = await fetch("/api/events?" + query);
  if (!response.ok) return;
  const data = await response.json();
  for (const [name, value] of Object.entries(data.counters)) {{
    const element = document.getElementById(name);
    if (element) element.textContent = value;
  }}
  const rows = data.events.map(event => {{
    const tr = document.createElement("tr");
    tr.className = event.outcome;
    tr.dataset.id = event.id;
    const link = document.createElement("a");
    link.href = "/events/" + event.id;
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
    if (event.outcome === "dead_letter") {{
      const button = document.createElement("button");
      button.textContent = "Replay";
      button.className = "replay";
      button.onclick = () => replay([event.id]);
      last.appendChild(button);
    }}
    tr.appendChild(last);
    return tr;
  }});
  tbody.replaceChildren(...rows);
}}
form.addEventListener("input", refresh);
refresh();
setInterval(refresh, 1000);
</script>
</body></html>
"""


def _header_name(name: str) -> str:
    """``x-home-region`` as it is usually written: ``X-Home-Region``."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _detail(row: Mapping[str, object], entry: Entry, history: list[AttemptRecord]) -> str:
    e = html.escape
    params = "".join(
        f"<tr><th>{e(name)}</th><td><code>{e(value)}</code></td></tr>"
        for name, value in entry.params
    )
    token = entry.key[2:] if entry.key.startswith("t:") else None
    kept = dict(entry.headers)
    if token is not None:
        kept.setdefault("i-twilio-idempotency-token", token)
    headers = (
        "".join(
            f"<tr><th>{e(_header_name(name))}</th><td><code>{e(value)}</code></td></tr>"
            for name, value in kept.items()
        )
        or "<tr><td>none kept</td></tr>"
    )
    facts = [
        ("kind", entry.kind), ("status", entry.status), ("SID", entry.sid),
        ("callback", row["callback"]), ("outcome", str(row["outcome"]).replace("_", " ")),
        ("received", _stamp(entry.received_at)), ("attempts", entry.attempts),
        ("next attempt", _stamp(entry.next_attempt_at) if entry.state is State.PENDING else None),
        ("finished", _stamp(entry.finished_at)),
        ("delivery key", entry.key if token is None else None),
    ]  # fmt: skip
    fact_rows = "".join(
        f"<tr><th>{e(name)}</th><td>{e(str(value))}</td></tr>"
        for name, value in facts
        if value is not None
    )
    attempts = (
        "".join(
            f"<tr class='{e(a.outcome)}'><td>{a.number}</td><td>{e(_stamp(a.at) or '')}</td>"
            f"<td class='outcome'>{e(a.outcome.replace('_', ' '))}</td>"
            f"<td>{'' if a.milliseconds is None else f'{a.milliseconds:.1f} ms'}</td>"
            f"<td>{'' if a.error is None else '<pre>' + e(a.error) + '</pre>'}</td></tr>"
            for a in history
        )
        or "<tr><td colspan='5'>no attempt seen by this process</td></tr>"
    )
    last_error = (
        f"<h2>Last error</h2><pre id='last-error'>{e(entry.last_error)}</pre>"
        if entry.last_error and entry.state is not State.DONE
        else ""
    )
    replay = (
        "<p><button id='replay' type='button'>Replay</button> <span id='note'></span></p>"
        f"""<script>
document.getElementById("replay").onclick = async () => {{
  const response = await fetch("/api/replay", {{method: "POST",
    headers: {{"Content-Type": "application/json", "X-Inspector": "replay"}},
    body: JSON.stringify({{ids: [{entry.id}]}})}});
  document.getElementById("note").textContent = response.ok ? "replayed" : "refused";
  setTimeout(() => location.reload(), 1000);
}};
</script>"""
        if entry.state is not State.RUNNING
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>event {entry.id} · twilio-trigger inspector</title><style>{_STYLE}</style></head>
<body><p><a href="/">← all events</a></p>
<h1>{e(entry.kind)} {e(entry.sid or "")} ({e(entry.status or "")})</h1>
<table class="facts">{fact_rows}</table>
{replay}{last_error}
<h2>Attempts</h2>
<table><thead><tr><th>#</th><th>at (UTC)</th><th>outcome</th><th>duration</th><th>error</th></tr>
</thead><tbody>{attempts}</tbody></table>
<h2>Parameters</h2><table class="params">{params}</table>
<h2>Headers</h2><table class="headers">{headers}</table>
<p>The signature was verified on arrival; the inbox keeps these headers, not the others.</p>
</body></html>
"""
