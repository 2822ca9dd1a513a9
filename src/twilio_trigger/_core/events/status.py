"""The status callbacks of messages, calls and recordings.

``SmsStatusChangeEvent`` is a message's status or an inbound message,
``CallStatusEvent`` a call's status (the events of the voice verbs subclass it, for
the call's parameters they carry too) and ``RecordingStatusEvent`` a recording's:
the kinds whose callbacks the package names in ``SMS_CALLBACKS``, ``CALL_CALLBACKS``
and ``RECORDING_CALLBACKS``.
"""

from __future__ import annotations

from .base import TwilioEvent
from .params import Media, _bool, _float, _int, _text, _time


class SmsStatusChangeEvent(TwilioEvent):
    """A message status callback or an inbound message webhook.

    ``status`` is ``MessageStatus``, or ``SmsStatus`` when only that was sent;
    ``received`` for an inbound message that states neither (Twilio's list of an
    inbound message's parameters has no status; its requests carry
    ``SmsStatus=received`` in practice).
    """

    __slots__ = ()

    message_sid = _text("MessageSid")
    sms_sid = _text("SmsSid")
    sms_message_sid = _text("SmsMessageSid")
    message_status = _text("MessageStatus")
    sms_status = _text("SmsStatus")
    messaging_service_sid = _text("MessagingServiceSid")
    body = _text("Body")
    num_segments = _int("NumSegments")
    raw_dlr_done_date = _text("RawDlrDoneDate")
    """The carrier's "done date", ``YYMMDDhhmm`` as sent: its time zone is unknown."""
    channel_install_sid = _text("ChannelInstallSid")
    channel_prefix = _text("ChannelPrefix")
    channel_status_message = _text("ChannelStatusMessage")
    channel_to_address = _text("ChannelToAddress")
    event_type = _text("EventType")
    message_type = _text("MessageType")
    num_media = _int("NumMedia")
    opt_out_type = _text("OptOutType")
    """``STOP``, ``START`` or ``HELP``: a whole-body opt-out keyword (Advanced Opt-Out)."""
    add_ons = _text("AddOns")
    """The Add-ons' results, as the JSON text Twilio sends."""
    # Location shared in WhatsApp.
    latitude = _float("Latitude")
    longitude = _float("Longitude")
    address = _text("Address")
    label = _text("Label")
    # WhatsApp and RCS.
    profile_name = _text("ProfileName")
    wa_id = _text("WaId")
    forwarded = _bool("Forwarded")
    frequently_forwarded = _bool("FrequentlyForwarded")
    button_text = _text("ButtonText")
    button_payload = _text("ButtonPayload")
    button_type = _text("ButtonType")
    interactive_data = _text("InteractiveData")
    flow_data = _text("FlowData")
    channel_metadata = _text("ChannelMetadata")
    original_replied_message_sender = _text("OriginalRepliedMessageSender")
    original_replied_message_sid = _text("OriginalRepliedMessageSid")
    # Click-to-WhatsApp ads.
    referral_body = _text("ReferralBody")
    referral_headline = _text("ReferralHeadline")
    referral_source_id = _text("ReferralSourceId")
    referral_source_type = _text("ReferralSourceType")
    referral_source_url = _text("ReferralSourceUrl")
    referral_media_id = _text("ReferralMediaId")
    referral_media_content_type = _text("ReferralMediaContentType")
    referral_media_url = _text("ReferralMediaUrl")
    referral_ctwa_clid = _text("ReferralCtwaClid")
    referral_num_media = _int("ReferralNumMedia")

    @property
    def media(self) -> tuple[Media, ...]:
        """The media items (``MediaUrl0``, ``MediaContentType0``, ...), in order."""
        first = self._first
        items: list[Media] = []
        index = 0
        while (url := first.get(f"MediaUrl{index}")) is not None:
            items.append(Media(url, first.get(f"MediaContentType{index}")))
            index += 1
        return tuple(items)


class CallStatusEvent(TwilioEvent):
    """A voice call status callback (or any voice webhook carrying ``CallStatus``)."""

    __slots__ = ()

    call_sid = _text("CallSid")
    call_status = _text("CallStatus")
    parent_call_sid = _text("ParentCallSid")
    direction = _text("Direction")
    caller = _text("Caller")
    called = _text("Called")
    caller_name = _text("CallerName")
    forwarded_from = _text("ForwardedFrom")
    call_duration = _int("CallDuration")
    """Seconds the call lasted (terminal events)."""
    duration = _int("Duration")
    """Billed minutes (``completed`` only)."""
    recording_url = _text("RecordingUrl")
    recording_sid = _text("RecordingSid")
    recording_duration = _int("RecordingDuration")
    timestamp = _time("Timestamp")
    sequence_number = _int("SequenceNumber")
    callback_source = _text("CallbackSource")
    sip_response_code = _int("SipResponseCode")
    answered_by = _text("AnsweredBy")
    machine_detection_duration = _int("MachineDetectionDuration")
    call_token = _text("CallToken")
    stir_verstat = _text("StirVerstat")
    stir_passport_token = _text("StirPassportToken")
    stir_status = _text("StirStatus")
    caller_city = _text("CallerCity")
    caller_state = _text("CallerState")
    caller_zip = _text("CallerZip")
    caller_country = _text("CallerCountry")
    called_city = _text("CalledCity")
    called_state = _text("CalledState")
    called_zip = _text("CalledZip")
    called_country = _text("CalledCountry")


class RecordingStatusEvent(TwilioEvent):
    """A recording status callback: a call's recording started, is ready, or is absent.

    ``status`` is ``RecordingStatus``: ``in-progress``, ``completed`` or ``absent``.
    ``call_sid`` is the parent call's SID.
    """

    __slots__ = ()

    recording_sid = _text("RecordingSid")
    recording_url = _text("RecordingUrl")
    recording_status = _text("RecordingStatus")
    recording_duration = _int("RecordingDuration")
    """Seconds recorded."""
    recording_channels = _int("RecordingChannels")
    recording_start_time = _time("RecordingStartTime")
    recording_source = _text("RecordingSource")
    """What started it: ``OutboundAPI``, ``StartCallRecordingAPI``, ``RecordVerb``, ..."""
    recording_track = _text("RecordingTrack")
    """``inbound``, ``outbound`` or ``both``."""
    call_sid = _text("CallSid")
    conference_sid = _text("ConferenceSid")
