"""The listener as a Django view.

::

    # urls.py
    from django.urls import path

    from myproject.twilio import listener  # a twilio_trigger.Listener
    from twilio_trigger.adapters.django import view

    urlpatterns = [path("hooks/twilio/", view(listener))]

The view is exempt from CSRF checks (Twilio's signature authenticates the
request), takes Twilio's POST and GET webhooks, and answers other methods with
405.  Sync callbacks run in
Django's request thread; async ones on the listener's event loop (see
:class:`~twilio_trigger.adapters._sync.SyncBridge`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from .._core import answers
from .._core.answers import Answer
from ._sync import SyncBridge, bridge_for

if TYPE_CHECKING:
    from .._listener import Listener

__all__ = ["SyncBridge", "bridge_for", "view"]


def _response(answer: Answer) -> HttpResponse:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers}
    return HttpResponse(answer.body, status=answer.status, headers=headers)


def view(listener: Listener) -> Callable[[HttpRequest], HttpResponse]:
    """A view answering the listener's webhooks (POST or GET), wherever it is routed.

    The listener's ``path`` setting does not apply: the URL configuration decides.
    """
    bridge = bridge_for(listener)

    @csrf_exempt
    def twilio_webhook(request: HttpRequest) -> HttpResponse:
        if request.method not in ("POST", "GET"):
            return _response(answers.METHOD_NOT_ALLOWED)
        answer = bridge.respond(
            request.META,
            request.read,
            lambda: (request.scheme or "http", request.get_host(), request.path),
        )
        return _response(answer)

    return twilio_webhook
