"""The listener as a Flask view or blueprint.

::

    from flask import Flask

    import twilio_trigger as twilio
    from twilio_trigger.adapters.flask import blueprint

    listener = twilio.Listener(path="/twilio")  # auth token(s) from TWILIO_AUTH_TOKEN
    app = Flask(__name__)
    app.register_blueprint(blueprint(listener))  # POST (and GET) /twilio

Sync callbacks run in Flask's request thread, inside the application and
request context; async ones on the listener's event loop (see
:class:`~twilio_trigger.adapters._sync.SyncBridge`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import flask

from .._core.answers import Answer
from ._sync import SyncBridge, bridge_for

if TYPE_CHECKING:
    from .._listener import Listener

__all__ = ["SyncBridge", "blueprint", "bridge_for", "view"]


def _response(answer: Answer) -> flask.Response:
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in answer.headers]
    return flask.Response(answer.body, status=answer.status, headers=headers)


def view(listener: Listener) -> Callable[[], flask.Response]:
    """A view function answering the listener's webhooks.

    Route it for POST (and GET, for webhooks configured so); the listener's
    ``path`` setting does not apply::

        app.add_url_rule("/twilio", view_func=view(listener), methods=["POST", "GET"])
    """
    bridge = bridge_for(listener)

    def twilio_webhook() -> flask.Response:
        request = flask.request
        answer = bridge.respond(
            request.environ,
            request.stream.read,
            lambda: (request.scheme, request.host, request.root_path + request.path),
        )
        return _response(answer)

    return twilio_webhook


def blueprint(
    listener: Listener, *, name: str = "twilio_trigger", url_prefix: str | None = None
) -> flask.Blueprint:
    """A blueprint routing POSTs and GETs to the listener's ``path`` (under *url_prefix*)
    to it.

    Behind a proxy or a mount that changes the URL, give the listener the URL
    Twilio calls as ``public_url``, or apply werkzeug's ``ProxyFix``.
    """
    routes = flask.Blueprint(name, __name__, url_prefix=url_prefix)
    routes.add_url_rule(
        listener.settings.path, "webhook", view_func=view(listener), methods=["POST", "GET"]
    )
    return routes
