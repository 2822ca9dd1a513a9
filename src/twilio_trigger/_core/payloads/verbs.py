"""Voice: the callbacks of TwiML verbs, the requests Twilio makes to the URLs a
``<Gather>``, ``<Record>``, ``<Dial>``, ``<Enqueue>``, ``<Queue>`` or ``<Pay>``
names (its ``action``, its status or partial-result callback), and the
asynchronous answering machine detection callback.  Most are the live call's
parameters plus what the verb adds: they share the helpers here and take the
call's parameters from :mod:`.status`.
"""

from __future__ import annotations

import uuid

from ._common import ACCOUNT_SID, CUSTOMER_NUMBER, TWILIO_NUMBER, _apply, _require, new_sid
from .status import inbound_call_params


def _live_call(sid: str | None) -> dict[str, str]:
    """The standard parameters of a TwiML request on an answered inbound call."""
    return inbound_call_params("in-progress", sid=sid)


def _recording_url(recording_sid: str) -> str:
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"


_GATHER_RESULTS: dict[str, dict[str, str]] = {
    "digits": {"Digits": "1", "FinishedOnKey": "#"},
    "speech": {"SpeechResult": "I'd like to check my order status.", "Confidence": "0.9216"},
    "empty": {},
}


def gather_params(
    result: str = "digits", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Gather action>`` URL: the live call's parameters plus what the
    caller entered.  *result* picks the input: ``digits`` (``Digits`` and ``FinishedOnKey``),
    ``speech`` (``SpeechResult`` and ``Confidence``) or ``empty`` (neither, as sent with
    ``actionOnEmptyResult="true"``); *sid* is the ``CallSid``.
    """
    _require("gather result", result, tuple(_GATHER_RESULTS))
    params = _live_call(sid)
    params.update(_GATHER_RESULTS[result])
    return _apply(params, overrides)


def gather_partial_params(
    result: str = "partial", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """An asynchronous ``<Gather partialResultCallback>`` request: an interim speech
    transcript (``UnstableSpeechResult``, ``StableSpeechResult``, ``Stability``,
    ``SequenceNumber``) while the caller is still talking.  *result* accepts only
    ``partial``, the one kind of request this URL gets; *sid* is the ``CallSid``.
    """
    _require("partial gather result", result, ("partial",))
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": sid or new_sid("CA"),
        "CallStatus": "in-progress",
        "Direction": "inbound",
        "From": CUSTOMER_NUMBER,
        "To": TWILIO_NUMBER,
        "UnstableSpeechResult": "I'd like to check my order",
        "StableSpeechResult": "I'd like to",
        "Stability": "0.7",
        "SequenceNumber": "1",
    }
    return _apply(params, overrides)


def transcription_params(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A ``<Record transcribeCallback>`` request, sent once Twilio has transcribed a
    recording.  *status* is the ``TranscriptionStatus`` (``completed`` or ``failed``);
    a failed transcription has no ``TranscriptionText``.  *sid* is the
    ``TranscriptionSid``; the recording and the call get fresh SIDs.
    """
    sid = sid or new_sid("TR")
    recording = new_sid("RE")
    params = {
        "TranscriptionSid": sid,
        "TranscriptionText": (
            "Hi, this is Dana about order A-1042. The parcel arrived damaged, please call me back."
        ),
        "TranscriptionStatus": status,
        "TranscriptionUrl": (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Transcriptions/{sid}"
        ),
        "RecordingSid": recording,
        "RecordingUrl": _recording_url(recording),
        "CallSid": new_sid("CA"),
        "AccountSid": ACCOUNT_SID,
        "From": CUSTOMER_NUMBER,
        "To": TWILIO_NUMBER,
        "CallStatus": "completed",
        "ApiVersion": "2010-04-01",
        "Direction": "inbound",
    }
    if status != "completed":
        del params["TranscriptionText"]
    return _apply(params, overrides)


def dial_params(
    status: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Dial action>`` URL once the dialled party is done with the
    call.  *status* is the ``DialCallStatus`` (``completed``, ``answered`` -- after a
    conference, so no child leg or duration --, ``busy``, ``no-answer``, ``failed``,
    ``canceled``); *sid* is the parent call's ``CallSid``.
    """
    params = _live_call(sid)
    params["DialCallStatus"] = status
    if status != "answered":
        params["DialCallSid"] = new_sid("CA")
        params["DialCallDuration"] = "32" if status == "completed" else "0"
    params["DialBridged"] = "true" if status in ("completed", "answered") else "false"
    return _apply(params, overrides)


_RECORD_ENDINGS = {"completed": "#", "hangup": "hangup"}


def record_params(
    result: str = "completed", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Record action>`` URL when a recording ends.  *result* says
    how: ``completed`` (the caller pressed ``#``) or ``hangup`` (``Digits=hangup``);
    *sid* is the ``CallSid``.  The recording gets a fresh ``RE`` SID.
    """
    _require("record result", result, tuple(_RECORD_ENDINGS))
    recording = new_sid("RE")
    params = _live_call(sid)
    params.update(
        RecordingUrl=_recording_url(recording),
        RecordingDuration="14",
        RecordingSid=recording,
        Digits=_RECORD_ENDINGS[result],
    )
    return _apply(params, overrides)


def enqueue_params(
    result: str = "bridged", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to an ``<Enqueue action>`` URL when the caller leaves the queue.
    *result* is the ``QueueResult`` (``bridged``, ``bridging-in-process``, ``error``,
    ``hangup``, ``leave``, ``redirected``, ``redirected-from-bridged``, ``queue-full``,
    ``system-error``); ``queue-full`` has no ``QueueSid``/``QueueTime``, as the
    caller never got in.  *sid* is the ``CallSid``.
    """
    params = _live_call(sid)
    params["QueueResult"] = result
    if result != "queue-full":
        params.update(QueueSid=new_sid("QU"), QueueTime="38")
    return _apply(params, overrides)


def queue_wait_params(
    position: str = "1", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to an ``<Enqueue waitUrl>``, repeated while the caller waits.
    *position* is the caller's ``QueuePosition``; ``CurrentQueueSize`` is at least
    that.  *sid* is the waiting caller's ``CallSid``.
    """
    position = str(position)
    size = max(3, int(position)) if position.isdigit() else 3
    params = _live_call(sid)
    params.update(
        QueuePosition=position,
        QueueSid=new_sid("QU"),
        QueueTime="12",
        AvgQueueTime="40",
        CurrentQueueSize=str(size),
        MaxQueueSize="100",
    )
    return _apply(params, overrides)


def dequeue_params(
    event: str = "dequeue", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Queue url>``, run on a caller just taken out of a queue
    before the two calls are bridged.  *event* accepts only ``dequeue``; *sid* is the
    dequeued caller's ``CallSid``, ``DequeingCallSid`` (Twilio's spelling) the agent's.
    """
    _require("dequeue event", event, ("dequeue",))
    params = _live_call(sid)
    params.update(QueueSid=new_sid("QU"), QueueTime="95", DequeingCallSid=new_sid("CA"))
    return _apply(params, overrides)


def pay_params(
    result: str = "success", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The request to a ``<Pay action>`` URL when ``<Pay>`` ends.  *result* is the
    ``Result`` (``success``, ``too-many-failed-attempts``, ``payment-connector-error``,
    ``caller-interrupted-with-star``, ``caller-hung-up``, ``validation-error``,
    ``internal-error``): ``success`` carries ``PaymentToken`` and
    ``PaymentConfirmationCode``, any other ``PaymentError`` and ``PayErrorCode``.  Card
    details are masked as Twilio sends them.  *sid* is the ``CallSid``.
    """
    params = _live_call(sid)
    params.update(
        Result=result,
        ProfileId="cus_P8h3Zk1VbQ2mXn",
        PaymentMethod="credit-card",
        PaymentCardNumber="xxxx-xxxxxx-x4001",
        PaymentCardType="visa",
        ExpirationDate="1226",
        SecurityCode="xxx",
        PaymentCardPostalCode="94105",
    )
    if result == "success":
        params.update(
            PaymentToken="tok_" + uuid.uuid4().hex[:24],
            PaymentConfirmationCode="ch_a9dc6297cd1a4fb095e61b1a9cf2dd1d",
        )
    else:
        params.update(
            PaymentError="Payment Gateway rejected charge creation.", PayErrorCode="64008"
        )
    return _apply(params, overrides)


# The stages of <Pay> that come after the card number was entered.
_PAY_STAGES_AFTER_CARD = ("expiration-date", "security-code", "postal-code", "payment-processing")


def pay_status_params(
    stage: str = "payment-card-number", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """A ``<Pay statusCallback>`` request, sent at each stage of a payment.  *stage* is
    ``For`` (``payment-card-number``, ``expiration-date``, ``security-code``,
    ``postal-code``, ``bank-routing-number``, ``bank-account-number``,
    ``payment-processing``); stages after the card number add the masked
    ``PaymentCardNumber``.  Give ``ErrorType=...`` for a failed attempt.  *sid* is the
    ``CallSid``.
    """
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": sid or new_sid("CA"),
        "For": stage,
        "Attempt": "1",
    }
    if stage in _PAY_STAGES_AFTER_CARD:
        params["PaymentCardNumber"] = "xxxx-xxxxxx-x4001"
    return _apply(params, overrides)


def machine_detection_params(
    answered_by: str = "machine_end_beep", *, sid: str | None = None, **overrides: object
) -> dict[str, str]:
    """The asynchronous answering machine detection callback (``AsyncAmdStatusCallback``).
    *answered_by* is ``AnsweredBy`` (``human``, ``machine_start``, ``machine_end_beep``,
    ``machine_end_silence``, ``machine_end_other``, ``fax``, ``unknown``).  It has no
    ``CallStatus`` and no ``CallbackSource``, which tells it from the call's own
    requests.  *sid* is the ``CallSid``.
    """
    params = {
        "CallSid": sid or new_sid("CA"),
        "AccountSid": ACCOUNT_SID,
        "AnsweredBy": answered_by,
        "MachineDetectionDuration": "4210",
    }
    return _apply(params, overrides)
