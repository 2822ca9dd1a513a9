"""Voice: the results of TwiML verbs, and the callbacks they make.

What ``<Gather>``, ``<Dial>``, ``<Record>``, ``<Enqueue>``, ``<Queue>`` and ``<Pay>``
post to their ``action`` and callback URLs, a recording's transcription and the
asynchronous answering machine detection: each a ``CallStatusEvent`` with the
parameters of its verb.
"""

from __future__ import annotations

from .params import _bool, _float, _int, _text
from .status import CallStatusEvent


class GatherEvent(CallStatusEvent):
    """What a caller entered at a ``<Gather>``: posted to its ``action`` URL.

    Answer it with the TwiML the call goes on with (``None`` is an empty
    ``<Response/>``, which ends the call).  With ``actionOnEmptyResult`` it
    comes with neither ``digits`` nor ``speech_result``.
    """

    __slots__ = ()

    digits = _text("Digits")
    """The keys pressed, without the ``finishOnKey`` key."""
    speech_result = _text("SpeechResult")
    confidence = _float("Confidence")
    """0.0 to 1.0, with speech; Twilio does not promise it is sent."""
    finished_on_key = _text("FinishedOnKey")


class GatherPartialEvent(CallStatusEvent):
    """An interim transcript of ``<Gather partialResultCallback>``: no TwiML is read."""

    __slots__ = ()

    unstable_speech_result = _text("UnstableSpeechResult")
    stable_speech_result = _text("StableSpeechResult")
    stability = _float("Stability")


class TranscriptionEvent(CallStatusEvent):
    """A ``<Record transcribeCallback>``: the transcript of a recording, or its failure.

    ``status`` is ``TranscriptionStatus`` (``completed``, ``failed``), ``sid``
    the ``TranscriptionSid``.  The call goes on regardless of the answer.
    """

    __slots__ = ()

    transcription_sid = _text("TranscriptionSid")
    transcription_text = _text("TranscriptionText")
    transcription_status = _text("TranscriptionStatus")
    transcription_url = _text("TranscriptionUrl")


class DialEvent(CallStatusEvent):
    """How a ``<Dial>`` ended: posted to its ``action`` URL; answer with TwiML.

    ``status`` is ``DialCallStatus`` (``completed``, ``answered``, ``busy``,
    ``no-answer``, ``failed``, ``canceled``).
    """

    __slots__ = ()

    dial_call_status = _text("DialCallStatus")
    dial_call_sid = _text("DialCallSid")
    """The dialled leg's SID (not after dialling a conference)."""
    dial_call_duration = _int("DialCallDuration")
    dial_bridged = _bool("DialBridged")
    """Whether the caller was connected to the destination."""
    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")


class RecordEvent(CallStatusEvent):
    """A ``<Record>`` finished: posted to its ``action`` URL; answer with TwiML.

    ``recording_url`` may not be fetchable yet: a recording status callback
    says when it is.
    """

    __slots__ = ()

    digits = _text("Digits")
    """The key that ended the recording, or ``hangup``."""


class EnqueueEvent(CallStatusEvent):
    """A caller left an ``<Enqueue>`` queue: posted to its ``action`` URL; answer with TwiML.

    ``status`` is ``QueueResult`` (``bridged``, ``hangup``, ``leave``,
    ``redirected``, ``queue-full``, ``error``, ``system-error``, ...).
    """

    __slots__ = ()

    queue_result = _text("QueueResult")
    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")
    """Seconds the caller waited (only when actually enqueued)."""


class QueueWaitEvent(CallStatusEvent):
    """``<Enqueue waitUrl>``: what a waiting caller hears, asked again whenever it runs out.

    Answer with TwiML of ``<Play>``, ``<Say>``, ``<Pause>``, ``<Gather>``,
    ``<Redirect>``, ``<Leave>`` or ``<Hangup>``.
    """

    __slots__ = ()

    queue_position = _int("QueuePosition")
    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")
    avg_queue_time = _int("AvgQueueTime")
    current_queue_size = _int("CurrentQueueSize")
    max_queue_size = _int("MaxQueueSize")


class DequeueEvent(CallStatusEvent):
    """``<Queue url>``: a queued caller is about to be bridged to whoever dequeued them.

    ``call_sid`` is the queued caller's call; answer with TwiML of ``<Play>``,
    ``<Say>``, ``<Pause>`` or ``<Redirect>``, which the caller hears first.
    """

    __slots__ = ()

    queue_sid = _text("QueueSid")
    queue_time = _int("QueueTime")
    dequeing_call_sid = _text("DequeingCallSid")
    """The call that dequeued the caller (Twilio's spelling)."""


class _PaymentFields(CallStatusEvent):
    __slots__ = ()

    payment_method = _text("PaymentMethod")
    payment_card_number = _text("PaymentCardNumber")
    """Masked, as ``xxxx-xxxxxx-x4001``."""
    payment_card_type = _text("PaymentCardType")
    expiration_date = _text("ExpirationDate")
    """``MMYY``."""
    security_code = _text("SecurityCode")
    """Redacted."""
    payment_card_postal_code = _text("PaymentCardPostalCode")
    bank_account_number = _text("BankAccountNumber")
    bank_routing_number = _text("BankRoutingNumber")
    bank_account_type = _text("BankAccountType")


class PayEvent(_PaymentFields):
    """How a ``<Pay>`` ended: posted to its ``action`` URL; answer with TwiML.

    ``status`` is ``Result`` (``success``, ``too-many-failed-attempts``,
    ``caller-hung-up``, ``payment-connector-error``, ...).
    """

    __slots__ = ()

    result = _text("Result")
    profile_id = _text("ProfileId")
    payment_token = _text("PaymentToken")
    payment_confirmation_code = _text("PaymentConfirmationCode")
    payment_error = _text("PaymentError")
    pay_error_code = _int("PayErrorCode")
    connector_error = _text("ConnectorError")


class PayStatusEvent(_PaymentFields):
    """``<Pay statusCallback>``: the caller moved to another stage of a payment.

    ``status`` is ``For``, the stage (``payment-card-number``,
    ``expiration-date``, ``security-code``, ``postal-code``,
    ``payment-processing``, ...).
    """

    __slots__ = ()

    for_ = _text("For")
    error_type = _text("ErrorType")
    attempt = _int("Attempt")


class MachineDetectionEvent(CallStatusEvent):
    """The asynchronous answering machine detection result (``AsyncAmdStatusCallback``).

    ``status`` is ``AnsweredBy`` (``human``, ``machine_start``,
    ``machine_end_beep``, ``fax``, ``unknown``, ...).  The call is already
    running its TwiML: change it with Twilio's API, not with the answer.
    """

    __slots__ = ()
