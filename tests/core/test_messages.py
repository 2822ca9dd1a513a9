"""The package's messages read as English and help: "an int", "1 parameter", and a
misspelt callback answered with the name it was probably meant to be."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import twilio_trigger as twilio
from twilio_trigger import ServiceError
from twilio_trigger._core.replies import reply_answer
from twilio_trigger._core.routing import to_event
from twilio_trigger._core.services import resolve_callbacks
from twilio_trigger._core.twiml import ReplyError, reply_body
from twilio_trigger._core.wording import a_or_an, counted
from twilio_trigger.cli import cli
from twilio_trigger.testing import assignment_params, sms_status_params


@pytest.mark.parametrize(
    ("word", "said"),
    [
        ("int", "an int"),
        ("str", "a str"),
        ("list", "a list"),
        ("event", "an event"),
        ("AssignmentEvent", "an AssignmentEvent"),
        ("assignment", "an assignment"),
        ("HTTPError", "an HTTPError"),  # read letter by letter: "aitch"
        ("URL", "a URL"),  # "you"
        ("unicode", "a unicode"),
        ("undefined", "an undefined"),
        ("object", "an object"),
    ],
)
def test_a_or_an_follows_the_sound(word: str, said: str) -> None:
    assert a_or_an(word) == said


def test_counted_says_one_thing_and_several_things() -> None:
    assert counted(1, "parameter") == "1 parameter"
    assert counted(0, "parameter") == "0 parameters"
    assert counted(3, "parameter") == "3 parameters"
    assert counted(1, "process", "processes") == "1 process"
    assert counted(2, "process", "processes") == "2 processes"


# -- callbacks that are no callbacks -----------------------------------------------------
def refusal(service: object, base: type) -> str:
    with pytest.raises(ServiceError) as refused:
        resolve_callbacks(service, base)
    return str(refused.value)


def test_a_misspelt_callback_is_answered_with_the_one_meant() -> None:
    class Tracker(twilio.SmsStatusService):
        def on_deliverd(self, event: twilio.SmsStatusChangeEvent) -> None:
            pass

    message = refusal(Tracker(), twilio.SmsStatusService)
    assert message.startswith(
        "Tracker defines on_deliverd (did you mean on_delivered?), which is not a callback "
        "of SmsStatusService; its callbacks are on_accepted "
    ), message
    assert "is not SmsStatusService callback" not in message


def test_a_callback_of_another_service_class_says_which() -> None:
    class Confused(twilio.SmsStatusService):
        def on_ringing(self, event: twilio.SmsStatusChangeEvent) -> None:
            pass

        def on_absent(self, event: twilio.SmsStatusChangeEvent) -> None:
            pass

        def on_sentt(self, event: twilio.SmsStatusChangeEvent) -> None:
            pass

        def on_zzz(self, event: twilio.SmsStatusChangeEvent) -> None:
            pass

    message = refusal(Confused(), twilio.SmsStatusService)
    assert message.startswith(
        "Confused defines on_absent (a callback of RecordingStatusService), "
        "on_ringing (a callback of CallStatusService), on_sentt (did you mean on_sent?), "
        "on_zzz, which are not callbacks of SmsStatusService; its callbacks are "
    ), message


def test_a_callback_of_several_other_classes_names_them_all() -> None:
    class Messages(twilio.SmsStatusService):
        def on_completed(self, event: twilio.SmsStatusChangeEvent) -> None:
            pass

    message = refusal(Messages(), twilio.SmsStatusService)
    assert "on_completed (a callback of CallStatusService and RecordingStatusService)" in (message)


def test_attaching_says_the_same(listener_options: dict[str, object]) -> None:
    class Calls(twilio.CallStatusService):
        def on_complted(self, event: twilio.CallStatusEvent) -> None:
            pass

    listener = twilio.Listener(0, **listener_options)  # type: ignore[arg-type]
    with pytest.raises(ServiceError, match=r"on_complted \(did you mean on_completed\?\)"):
        listener.attach(Calls())


@pytest.fixture
def listener_options() -> dict[str, object]:
    return {"host": "127.0.0.1", "auth_tokens": ["0" * 32]}


# -- other messages ----------------------------------------------------------------------
def test_a_reply_of_the_wrong_type_is_named_with_its_article() -> None:
    inbound = to_event(list(sms_status_params("received").items()))
    assert inbound is not None
    with pytest.raises(ReplyError, match=r"^a callback returned an int: "):
        reply_body(inbound, 42)
    with pytest.raises(ReplyError, match=r"^a callback returned a float: "):
        reply_body(inbound, 4.2)


def test_a_json_reply_of_the_wrong_type_is_named_with_its_article() -> None:
    event = to_event(list(assignment_params().items()))
    assert event is not None
    with pytest.raises(ReplyError, match=r"^an assignment callback returns None.*; got an int$"):
        reply_answer(event, 42)
    with pytest.raises(ReplyError, match=r"; got a list$"):
        reply_answer(event, ["accept"])


# -- words that mean nothing to a Python user ---------------------------------------------
def test_no_module_speaks_of_a_seed_and_only_the_package_docstring_of_ballerina() -> None:
    package = Path(twilio.__file__).parent
    for path in sorted(package.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert re.search(r"\bseed", text, re.I) is None, path
        if path.name == "__init__.py" and path.parent == package:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert "Ballerina" in docstring  # as background, once
            text = text.replace(docstring, "")
        assert "ballerina" not in text.lower(), path


def test_verify_counts_one_parameter_in_the_singular() -> None:
    url, token, pairs = "https://hooks.example.com/twilio", "1" * 32, [("MessageStatus", "sent")]
    signature = twilio.compute_signature(url, pairs, token)
    args = ["verify", "--url", url, "--auth-token", token, "MessageStatus=sent"]
    valid = CliRunner().invoke(cli, [*args, "--signature", signature], env={})
    assert valid.exit_code == 0, valid.output
    assert valid.output.rstrip().endswith("(1 parameter)"), valid.output
    invalid = CliRunner().invoke(cli, [*args, "--signature", "AAAA" + signature[4:]], env={})
    assert invalid.output.startswith("invalid (1 parameter): "), invalid.output
