"""The Listener facade (``_listener.py``) without serving: the ``service`` decorator.

Serving is covered with real servers in ``tests/e2e/``.
"""

from __future__ import annotations

import pytest

from tests.services import Tracker
from twilio_trigger import (
    CallStatusEvent,
    CallStatusService,
    Listener,
    ServiceError,
    SmsStatusChangeEvent,
    SmsStatusService,
)


@pytest.fixture
def listener() -> Listener:
    return Listener(0, auth_tokens=["t"])


# -- the decorator ---------------------------------------------------------------------


def test_the_decorator_returns_the_class_and_attaches_an_instance(listener: Listener) -> None:
    @listener.service
    class Decorated(CallStatusService):
        def on_busy(self, event: CallStatusEvent) -> None:
            pass

    assert isinstance(Decorated, type)
    assert Decorated.__name__ == "Decorated"
    (attached,) = listener.services
    assert type(attached) is Decorated


def test_the_decorator_refuses_a_class_needing_arguments(listener: Listener) -> None:
    class NeedsArgs(SmsStatusService):
        def __init__(self, database: str) -> None:
            self.database = database

    with pytest.raises(ServiceError, match="NeedsArgs"):
        listener.service(NeedsArgs)
    assert listener.services == ()


def test_the_decorator_applies_the_attach_rules(listener: Listener) -> None:
    class Typo(SmsStatusService):
        def on_recieved(self, event: SmsStatusChangeEvent) -> None:
            pass

    with pytest.raises(ServiceError, match="on_recieved"):
        listener.service(Typo)
    with pytest.raises(ServiceError):
        listener.service(Tracker())  # type: ignore[type-var]
