"""TaskRouter and Debugger webhooks over real HTTP.

TaskRouter payloads follow the fact sheet's §5 tables (the test kit's
``taskrouter_params`` and ``assignment_params``), signed by twilio-python's
``RequestValidator``.  One service defines every ``TaskRouterService`` callback
and records each call, so each test also checks that no other callback ran.
Checked: workspace events reach their callbacks with typed fields and are
answered ``204`` with ``Content-Type: application/json`` and no body, whatever the
callback returns; the assignment callback's answer (``None`` → 200 empty JSON
body, a mapping → 200 JSON of it); an assignment never reaches an event's
callback nor an event ``on_assignment``.  Then the Debugger: a webhook alert
parsed end to end, and the Event Streams error-log CloudEvent (signed by hand
over the URL with its ``bodySHA256``) reaching ``DebuggerService.on_error``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

import twilio_trigger as twilio
from tests.payloads import signed_cloudevents, signed_post
from twilio_trigger import testing

from ._support import TOKEN, CallLog, assert_empty_twiml, every_callback, running

TIMESTAMP = datetime(2023, 11, 14, 18, 30, tzinfo=UTC)
TASK_ATTRIBUTES = {"type": "support", "from": "+15558675310"}
WORKER_ATTRIBUTES = {"skills": ["english", "billing"]}
ACCOUNT = testing.ACCOUNT_SID


def callback_of(event_type: str) -> str:
    return "on_" + event_type.replace("-", "_").replace(".", "_")


# -- the recording services -----------------------------------------------------------------
@every_callback
class Workspace(CallLog[twilio.TaskRouterEvent], twilio.TaskRouterService):
    """Every ``TaskRouterService`` callback, each recording its call and returning
    what :attr:`replies` says for it (by default a mapping, which an event's ``204``
    must not carry)."""

    def default_reply(self, name: str) -> object:
        return {"instruction": "accept"}


class Alerts(twilio.DebuggerService):
    """Both Debugger callbacks, recording their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, twilio.DebuggerEvent]] = []
        self.lock = threading.Lock()

    def on_error(self, event: twilio.DebuggerEvent) -> None:
        with self.lock:
            self.calls.append(("on_error", event))

    async def on_warning(self, event: twilio.DebuggerEvent) -> None:
        with self.lock:
            self.calls.append(("on_warning", event))


def test_the_recording_service_defines_every_taskrouter_callback() -> None:
    names = set(twilio.TaskRouterService.callback_names)
    assert {"on_assignment", "on_task_created", "on_task_queue_expression_updated"} <= names
    assert names <= set(vars(Workspace))


# -- fixtures and helpers --------------------------------------------------------------------
@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return Workspace()


@pytest.fixture(scope="module")
def alerts() -> Alerts:
    return Alerts()


@pytest.fixture(scope="module")
def listener(workspace: Workspace, alerts: Alerts) -> Iterator[twilio.Listener]:
    with running(workspace, alerts) as listener:
        yield listener


@pytest.fixture(autouse=True)
def _fresh(workspace: Workspace, alerts: Alerts) -> Iterator[None]:
    workspace.reset()
    with alerts.lock:
        alerts.calls.clear()
    yield
    workspace.reset()


def post(listener: twilio.Listener, params: dict[str, str]) -> httpx.Response:
    return signed_post(listener.url, params, TOKEN)


def assert_no_content(response: httpx.Response) -> None:
    """TaskRouter's receipt: ``204``, ``Content-Type: application/json``, no body."""
    assert response.status_code == 204, response.text
    assert response.headers["content-type"].partition(";")[0].strip() == "application/json"
    assert response.content == b""


def assert_json_200(response: httpx.Response) -> bytes:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].partition(";")[0].strip() == "application/json"
    return response.content


# -- workspace events ---------------------------------------------------------------------------
EVENT_TYPES = (
    "task.created",
    "reservation.accepted",
    "worker.activity.update",
    "task-queue.entered",
    "task-queue.expression.updated",
    "workspace.deleted",
    "task.canceled",
    "workflow.timeout",
)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_an_event_reaches_its_callback_and_is_answered_204(
    listener: twilio.Listener, workspace: Workspace, event_type: str
) -> None:
    params = testing.taskrouter_params(event_type)
    assert_no_content(post(listener, params))
    name, event = workspace.only()
    assert name == callback_of(event_type)
    assert type(event) is twilio.TaskRouterEvent
    assert event.kind == "taskrouter"
    assert event.status == event_type
    assert event.event_type == event_type
    assert event.workspace_sid == params["WorkspaceSid"]
    assert event.workspace_name == "Acme Support"
    assert event.resource_type == params["ResourceType"]
    assert event.resource_sid == params["ResourceSid"]
    assert event.sid == params["ResourceSid"]
    assert event.event_description == params["EventDescription"]
    assert event.timestamp == TIMESTAMP
    assert event.timestamp_ms == 1699986600123


def test_a_task_created_has_its_attributes_parsed(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    params = testing.taskrouter_params("task.created")
    assert_no_content(post(listener, params))
    _, event = workspace.only()
    assert event.resource_type == "Task"
    assert event.task_sid == params["TaskSid"]
    assert event.task_attributes == TASK_ATTRIBUTES
    assert event.task_age == 12
    assert event.task_priority == 0
    assert event.task_assignment_status == "pending"
    assert event.workflow_sid == params["WorkflowSid"]
    assert event.worker_attributes is None


def test_a_reservation_accepted_has_task_worker_and_queue(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    params = testing.taskrouter_params("reservation.accepted")
    assert_no_content(post(listener, params))
    name, event = workspace.only()
    assert name == "on_reservation_accepted"  # never on_assignment
    assert event.reservation_sid == params["ReservationSid"]
    assert event.task_attributes == TASK_ATTRIBUTES
    assert event.worker_attributes == WORKER_ATTRIBUTES
    assert event.worker_sid == params["WorkerSid"]
    assert event.task_queue_sid == params["TaskQueueSid"]
    assert event.task_assignment_status == "assigned"


def test_a_worker_activity_update_has_its_previous_activity(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    params = testing.taskrouter_params("worker.activity.update", WorkerActivityName="Break")
    assert_no_content(post(listener, params))
    _, event = workspace.only()
    assert event.worker_sid == params["WorkerSid"]
    assert event.worker_attributes == WORKER_ATTRIBUTES
    assert event.worker_activity_name == "Break"
    assert event.worker_previous_activity_sid == params["WorkerPreviousActivitySid"]
    assert event.worker_time_in_previous_activity == 35


def test_a_task_queue_expression_updated_has_its_expression(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    params = testing.taskrouter_params("task-queue.expression.updated")
    assert_no_content(post(listener, params))
    _, event = workspace.only()
    assert event.task_queue_sid == params["TaskQueueSid"]
    assert event.task_queue_target_expression == 'skills HAS "billing"'


@pytest.mark.parametrize("reply", [None, "<Response/>", {"instruction": "accept"}])
def test_an_event_is_answered_204_whatever_its_callback_returns(
    listener: twilio.Listener, workspace: Workspace, reply: object
) -> None:
    workspace.replies["on_task_completed"] = reply
    assert_no_content(post(listener, testing.taskrouter_params("task.completed")))
    assert workspace.names() == ["on_task_completed"]


def test_an_event_delivered_twice_runs_once(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    params = testing.taskrouter_params("task.created")
    assert_no_content(post(listener, params))
    assert_no_content(post(listener, params))
    assert workspace.names() == ["on_task_created"]


def test_a_reservation_created_event_is_not_an_assignment(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    # It carries ReservationSid, WorkerAttributes and TaskAttributes, as an
    # assignment does, and an EventType, which an assignment has not.
    params = testing.taskrouter_params("reservation.created")
    assert {"ReservationSid", "WorkerAttributes", "TaskAttributes"} <= set(params)
    assert_no_content(post(listener, params))
    assert workspace.names() == ["on_reservation_created"]


# -- the assignment callback -------------------------------------------------------------------
def test_an_assignment_answered_none_is_an_empty_json_200(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    workspace.replies["on_assignment"] = None
    params = testing.assignment_params()
    assert assert_json_200(post(listener, params)) == b""
    name, event = workspace.only()
    assert name == "on_assignment"  # never a task's callback
    assert isinstance(event, twilio.AssignmentEvent)
    assert event.kind == "assignment"
    assert event.sid == params["ReservationSid"]
    assert event.reservation_sid == params["ReservationSid"]
    assert event.task_sid == params["TaskSid"]
    assert event.worker_sid == params["WorkerSid"]
    assert event.task_attributes == TASK_ATTRIBUTES
    assert event.worker_attributes == WORKER_ATTRIBUTES
    assert event.task_queue_sid == params["TaskQueueSid"]
    assert event.workflow_sid == params["WorkflowSid"]
    assert event.timestamp == TIMESTAMP
    assert event.event_type is None


def test_an_assignment_answered_with_an_instruction_is_its_json(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    instruction = {
        "instruction": "dequeue",
        "from": "+14155550143",
        "post_work_activity_sid": testing.new_sid("WA"),
    }
    workspace.replies["on_assignment"] = instruction
    body = assert_json_200(post(listener, testing.assignment_params()))
    assert json.loads(body) == instruction
    assert workspace.names() == ["on_assignment"]


def test_an_assignment_sent_twice_is_asked_twice(
    listener: twilio.Listener, workspace: Workspace
) -> None:
    params = testing.assignment_params()
    for _ in range(2):
        assert json.loads(assert_json_200(post(listener, params))) == {"instruction": "accept"}
    assert workspace.names() == ["on_assignment", "on_assignment"]


# -- the Debugger ------------------------------------------------------------------------------
def test_a_debugger_alert_is_parsed_end_to_end(
    listener: twilio.Listener, alerts: Alerts, workspace: Workspace
) -> None:
    params = testing.debugger_params("error")
    assert_empty_twiml(post(listener, params))
    with alerts.lock:
        assert [name for name, _ in alerts.calls] == ["on_error"]
        event = alerts.calls[0][1]
    assert event.kind == "debugger"
    assert event.sid == params["Sid"]
    assert event.level == "ERROR"
    assert event.timestamp == TIMESTAMP
    assert event.payload_type == "application/json"
    assert event.error_code == 11200
    assert event.alert_code == 11200
    assert event.resource_sid is not None
    assert event.resource_sid.startswith("CA")
    assert event.service_sid is None
    assert event.more_info is not None
    assert event.more_info["httpResponse"] == "502"
    assert event.more_info["url"] == "https://hooks.example.com/voice"
    assert event.webhook is not None
    assert event.webhook["type"] == "application/json"
    assert event.webhook_request is not None
    assert event.webhook_request["method"] == "POST"
    assert event.webhook_request["url"] == "https://hooks.example.com/voice"
    assert event.webhook_response is not None
    assert event.webhook_response["status_code"] == 502
    assert event.webhook_response["body"] == "Bad Gateway"
    assert workspace.names() == []


def test_a_debugger_warning_reaches_on_warning(listener: twilio.Listener, alerts: Alerts) -> None:
    params = testing.debugger_params("warning")
    assert_empty_twiml(post(listener, params))
    with alerts.lock:
        assert [name for name, _ in alerts.calls] == ["on_warning"]
        assert alerts.calls[0][1].level == "WARNING"


def post_cloudevents(url: str, events: list[dict[str, object]]) -> httpx.Response:
    return signed_cloudevents(url, events, TOKEN)


def test_the_error_log_cloudevent_reaches_on_error(
    listener: twilio.Listener, alerts: Alerts, workspace: Workspace
) -> None:
    sid, service = testing.new_sid("NO"), testing.new_sid("MG")
    data: dict[str, object] = {
        "sid": sid,
        "account_sid": ACCOUNT,
        "date_created": "2023-11-14T18:30:00Z",
        "level": "ERROR",
        "master_account_sid": None,
        "request_sid": testing.new_sid("RQ"),
        "service_sid": service,
        "correlation_sid": testing.new_sid("SM"),
        "product_name": "Programmable Messaging",
        "error_code": 30008,
    }
    event_type = "com.twilio.error-logs.error.logged"
    response = post_cloudevents(listener.url, [testing.cloudevent(event_type, data)])
    assert_empty_twiml(response)
    with alerts.lock:
        assert [name for name, _ in alerts.calls] == ["on_error"]
        event = alerts.calls[0][1]
    assert workspace.names() == []
    assert isinstance(event, twilio.DebuggerEvent)
    assert event.sid == sid
    assert event.level == "ERROR"
    assert event.timestamp == TIMESTAMP
    assert event.error_code == 30008
    assert event.service_sid == service
    assert event.payload is not None
    assert event.payload["product_name"] == "Programmable Messaging"
    assert event.payload["correlation_sid"] == data["correlation_sid"]
