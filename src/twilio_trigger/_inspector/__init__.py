"""The event inspector: a small web page over the inbox, to look instead of grep.

It lists recent events with what became of them, shows one event whole (its
parameters, its attempts with their errors and tracebacks), and replays dead
letters.  The inbox is the record, whichever process wrote it (SQLite or
Redis); :class:`Activity` adds what this process saw of each attempt (the
callback, the outcome, how long it took) and a few counters.

It is served on a port of its own, on loopback unless told otherwise, and then
only with a token: events hold phone numbers and message bodies.  Server-rendered
HTML, a stylesheet and two small scripts that poll ``/api/events`` (and
``/api/refused``, the requests refused lately): no build step.
The pages are templates (``templates``) and the scripts and the stylesheet are
files of this package (``static``), served on paths of their own, so that the
pages' Content-Security-Policy allows no inline script or style: an escaping
mistake in a page could not run anything.

Every request is treated as hostile: bounded (query string, body, the time to
send the body), answered 4xx when it cannot be used, and never written to a log
unescaped.

One concept a module:

* :mod:`._activity`: the observer, what this process saw of each attempt;
* :mod:`._rows`: what a row shows, and the filters of ``/api/events``;
* :mod:`._app`: the ASGI application, its routes and its API;
* :mod:`._control`: dispatch control, each callback's limits and breaker;
* :mod:`._session`: who may look (the token, the signed session cookie);
* :mod:`._requests`: what a request holds (its host, body, replay ids);
* :mod:`._headers`: the headers every answer carries (the strict CSP);
* :mod:`._static`: the stylesheet and scripts, served under hashed paths;
* :mod:`._pages`: the HTML pages, rendered from ``templates``.
"""

from __future__ import annotations

from ._activity import Activity
from ._app import InspectorApp

__all__ = ["Activity", "InspectorApp"]
