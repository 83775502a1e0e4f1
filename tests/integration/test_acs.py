"""The ACS adapter, through the real SDK clients, against a local stub of the ACS REST API."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import socket
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from azure.communication.email import EmailClient
from azure.communication.sms import SmsClient
from azure.core.credentials import AzureKeyCredential

from shared.adapters.acs import (
    DEFAULT_THROTTLE_SECONDS,
    IDEMPOTENCY_NAMESPACE,
    AcsEmailSender,
    AcsProvider,
    AcsSmsSender,
    ProviderAuthenticationFailed,
    ProviderRejected,
    ProviderUnavailable,
    RepeatabilityExpired,
    RetrySettings,
    idempotency_uuid,
    parse_connection_string,
)
from shared.ports import EmailContent, MessageProvider, ProviderReceipt, ProviderThrottled
from tests.acs_stub import ACCESS_KEY, AcsStub, acs_stub, sign  # noqa: F401  (fixture)

SENDER = "DoNotReply@updates.police.example"
FROM_NUMBER = "+447700900001"
VICTIM_EMAIL = "alex.smith@example.org"
VICTIM_MOBILE = "+447700900123"
CONTENT = EmailContent(
    subject="Update on crime HU/004512/26",
    text="A suspect has been arrested.",
    html="<p>A suspect has been arrested.</p>",
)
SMS_TEXT = "Police update: a suspect has been arrested. Reply STOP to opt out."
METADATA = {"message_id": "k", "template": "suspect_arrested"}
# Small backoff so the retry tests take milliseconds; the shape is production's.
FAST = RetrySettings(retries=2, backoff_factor=0.01, backoff_max=0.5, connection_timeout=2, read_timeout=5)
WRONG_KEY = base64.b64encode(b"not-the-key-of-this-acs-resource").decode()


@pytest.fixture
def now() -> datetime:
    # Near the real time: the stub checks x-ms-date and the repeatability window against it.
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock(now: datetime) -> Callable[[], datetime]:
    return lambda: now


def email_sender(stub: AcsStub, clock: Callable[[], datetime], key: str | None = None) -> AcsEmailSender:
    return AcsEmailSender.from_connection_string(
        stub.connection_string(key), sender_address=SENDER, clock=clock, retry=FAST
    )


def sms_sender(stub: AcsStub, clock: Callable[[], datetime], key: str | None = None) -> AcsSmsSender:
    return AcsSmsSender.from_connection_string(
        stub.connection_string(key), sender=FROM_NUMBER, clock=clock, retry=FAST
    )


def send_email(sender: AcsEmailSender, key: str = "msg-1") -> ProviderReceipt:
    return sender.send_email(idempotency_key=key, to=VICTIM_EMAIL, content=CONTENT, metadata=METADATA)


def send_sms(
    sender: AcsSmsSender, key: str = "msg-1", first_sent_at: datetime | None = None
) -> ProviderReceipt:
    return sender.send_sms(
        idempotency_key=key, to=VICTIM_MOBILE, text=SMS_TEXT, metadata=METADATA, first_sent_at=first_sent_at
    )


# --- email ------------------------------------------------------------------------------------


def test_an_email_is_accepted_with_the_documented_body_and_a_signed_request(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    now: datetime,
) -> None:
    receipt = email_sender(acs_stub, clock).send_email(
        idempotency_key="msg-1", to=VICTIM_EMAIL, content=CONTENT, metadata=METADATA
    )

    [request] = acs_stub.recorded
    assert (request.method, request.path, request.query) == (
        "POST",
        "/emails:send",
        {"api-version": "2025-09-01"},
    )
    assert request.status == 202
    assert request.body == {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": VICTIM_EMAIL}]},
        "content": {"subject": CONTENT.subject, "plainText": CONTENT.text, "html": CONTENT.html},
        "userEngagementTrackingDisabled": True,
    }
    content_hash = base64.b64encode(hashlib.sha256(request.raw).digest()).decode()
    assert request.header("x-ms-content-sha256") == content_hash
    assert request.header("authorization").startswith(
        "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
    )
    operation_id = idempotency_uuid("email", "msg-1")
    assert request.header("operation-id") == operation_id
    assert receipt.provider_id == operation_id and receipt.accepted_at == now
    assert list(acs_stub.accepted_emails) == [operation_id]


def test_the_same_email_key_twice_is_one_message_under_one_operation_id(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
) -> None:
    sender = email_sender(acs_stub, clock)
    first = send_email(sender)
    # A fresh client, as after a crash and redelivery to another worker.
    second = send_email(email_sender(acs_stub, clock))

    sent = acs_stub.requests_to("email")
    assert len(sent) == 2 and {r.status for r in sent} == {202}
    assert sent[0].header("operation-id") == sent[1].header("operation-id")
    assert len(acs_stub.accepted_emails) == 1
    assert first == second


def test_different_keys_are_different_operations(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
) -> None:
    sender = email_sender(acs_stub, clock)
    send_email(sender, "msg-1")
    send_email(sender, "msg-2")
    assert len(acs_stub.accepted_emails) == 2


def test_idempotency_ids_are_stable_across_releases() -> None:
    # Changing the namespace or the derivation would turn every retry after a deploy into a second message.
    assert str(IDEMPOTENCY_NAMESPACE) == str(
        uuid.uuid5(uuid.NAMESPACE_URL, "urn:victim-updates:acs-idempotency")
    )
    assert idempotency_uuid("email", "msg-1") == str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, "email:msg-1"))
    assert idempotency_uuid("sms", "msg-1") == str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, "sms:msg-1"))
    assert idempotency_uuid("email", "msg-1") != idempotency_uuid("sms", "msg-1")


@pytest.mark.parametrize(("status", "error"), [(400, ProviderRejected), (409, ProviderUnavailable)])
def test_an_email_refused_with_400_is_permanent_and_409_is_retried_later(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    status: int,
    error: type[Exception],
) -> None:
    acs_stub.fail_next(status)
    with pytest.raises(error) as raised:
        send_email(email_sender(acs_stub, clock))
    assert getattr(raised.value, "status", None) == status
    assert len(acs_stub.requests_to("email")) == 1 and not acs_stub.accepted_emails


def test_a_rejection_quoting_the_address_keeps_it_out_of_the_traceback(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
) -> None:
    acs_stub.fail_next(400, message=f"Invalid recipient {VICTIM_EMAIL}")
    with pytest.raises(ProviderRejected) as raised:
        send_email(email_sender(acs_stub, clock))
    printed = "".join(traceback.format_exception(raised.value))
    assert "ProviderRejected" in printed and "HTTP 400" in printed
    assert VICTIM_EMAIL not in printed


def test_the_stub_answers_the_sdk_poller_as_the_service_does(acs_stub: AcsStub) -> None:  # noqa: F811
    # The adapter does not poll, but the stub's Operation-Location must be one the SDK follows.
    client = EmailClient(acs_stub.endpoint, AzureKeyCredential(ACCESS_KEY), polling_interval=0.01)
    operation_id = str(uuid.uuid4())
    message = {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": VICTIM_EMAIL}]},
        "content": {"subject": "s", "plainText": "t"},
    }
    result = client.begin_send(message, operation_id=operation_id).result(timeout=5)
    assert result == {"id": operation_id, "status": "Succeeded"}
    [poll] = acs_stub.requests_to("email-status")
    assert poll.path == f"/emails/operations/{operation_id}" and poll.status == 200


# --- SMS --------------------------------------------------------------------------------------------


def test_an_sms_carries_sender_number_text_and_deterministic_repeatability_fields(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    now: datetime,
) -> None:
    receipt = sms_sender(acs_stub, clock).send_sms(
        idempotency_key="msg-1", to=VICTIM_MOBILE, text=SMS_TEXT, metadata=METADATA
    )

    [request] = acs_stub.recorded
    assert (request.method, request.path, request.query) == ("POST", "/sms", {"api-version": "2021-03-07"})
    assert request.body == {
        "from": FROM_NUMBER,
        "smsRecipients": [
            {
                "to": VICTIM_MOBILE,
                "repeatabilityRequestId": str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, "sms:msg-1")),
                "repeatabilityFirstSent": format_datetime(now, usegmt=True),
            }
        ],
        "message": SMS_TEXT,
        "smsSendOptions": {"enableDeliveryReport": True, "tag": "msg-1"},
    }
    assert request.header("authorization").startswith("HMAC-SHA256 SignedHeaders=")
    [accepted] = acs_stub.accepted_sms.values()
    assert receipt.provider_id == accepted.result["messageId"] and receipt.accepted_at == now


def test_an_sms_retried_with_the_same_key_and_first_sent_time_is_one_message(
    acs_stub: AcsStub,  # noqa: F811
    now: datetime,
) -> None:
    first_attempt = now - timedelta(minutes=2)
    first = send_sms(sms_sender(acs_stub, lambda: first_attempt), first_sent_at=first_attempt)
    # The retry runs later, on another worker, with the first attempt's time from the ledger.
    second = send_sms(sms_sender(acs_stub, lambda: now), first_sent_at=first_attempt)

    first_body, second_body = (r.body for r in acs_stub.requests_to("sms"))
    assert first_body["smsRecipients"] == second_body["smsRecipients"]
    assert first_body["smsRecipients"][0]["repeatabilityFirstSent"] == format_datetime(
        first_attempt, usegmt=True
    )
    assert len(acs_stub.accepted_sms) == 1
    assert first.provider_id == second.provider_id


def test_the_public_sdk_send_would_have_sent_the_retry_twice(acs_stub: AcsStub) -> None:  # noqa: F811
    # Why the adapter does not call SmsClient.send: it draws a new repeatability id every call.
    client = SmsClient(acs_stub.endpoint, AzureKeyCredential(ACCESS_KEY))
    client.send(FROM_NUMBER, VICTIM_MOBILE, SMS_TEXT)
    client.send(FROM_NUMBER, VICTIM_MOBILE, SMS_TEXT)
    assert len(acs_stub.accepted_sms) == 2


def test_an_sms_retry_with_a_different_first_sent_time_is_refused_not_sent_again(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    now: datetime,
) -> None:
    sender = sms_sender(acs_stub, clock)
    send_sms(sender, first_sent_at=now - timedelta(minutes=1))
    with pytest.raises(ProviderRejected) as raised:
        send_sms(sender, first_sent_at=now)
    assert raised.value.status == 400 and "rejected" in raised.value.reason
    assert len(acs_stub.accepted_sms) == 1


def test_an_sms_first_sent_before_the_repeatability_window_is_refused_rather_than_risked(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    now: datetime,
) -> None:
    with pytest.raises(RepeatabilityExpired) as raised:
        send_sms(sms_sender(acs_stub, clock), first_sent_at=now - timedelta(minutes=10))
    assert raised.value.status == 412
    assert not acs_stub.accepted_sms


def test_a_failed_recipient_is_a_permanent_rejection_that_does_not_quote_the_number(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
) -> None:
    acs_stub.fail_next_recipient(400, f"Invalid To phone number format: {VICTIM_MOBILE}")
    with pytest.raises(ProviderRejected) as raised:
        send_sms(sms_sender(acs_stub, clock))
    assert raised.value.status == 400 and raised.value.channel == "sms"
    assert "Invalid To phone number format" in str(raised.value)
    assert VICTIM_MOBILE not in str(raised.value)
    assert not acs_stub.accepted_sms


def test_first_sent_at_must_be_timezone_aware(acs_stub: AcsStub, clock: Callable[[], datetime]) -> None:  # noqa: F811
    with pytest.raises(ValueError, match="timezone-aware"):
        send_sms(sms_sender(acs_stub, clock), first_sent_at=datetime(2026, 11, 20, 10, 0))
    assert not acs_stub.recorded


# --- failures, both channels ---------------------------------------------------------------------


def _send(
    channel: str, stub: AcsStub, clock: Callable[[], datetime], key: str | None = None
) -> ProviderReceipt:
    if channel == "email":
        return send_email(email_sender(stub, clock, key))
    return send_sms(sms_sender(stub, clock, key))


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_429_with_retry_after_30_is_provider_throttled_for_30s_without_waiting(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    channel: str,
) -> None:
    acs_stub.fail_next(429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(ProviderThrottled) as raised:
        _send(channel, acs_stub, clock)
    assert raised.value.retry_after_seconds == 30
    assert time.monotonic() - started < 5  # the SDK did not sleep the 30 s itself
    assert len(acs_stub.requests_to(channel)) == 1  # nor retry: the queue waits instead


@pytest.mark.parametrize(("retry_after", "seconds"), [(1, 1), (0, 0), (None, DEFAULT_THROTTLE_SECONDS)])
def test_a_429_is_never_retried_by_the_sdk_even_when_the_wait_is_short(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    retry_after: int | None,
    seconds: float,
) -> None:
    # azure-core's stock policy would sleep for a short Retry-After and try again inside the function.
    acs_stub.fail_next(429, retry_after=retry_after, times=3)
    started = time.monotonic()
    with pytest.raises(ProviderThrottled) as raised:
        send_email(email_sender(acs_stub, clock))
    assert raised.value.retry_after_seconds == seconds
    assert time.monotonic() - started < 0.5
    assert len(acs_stub.requests_to("email")) == 1


@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("channel", ["email", "sms"])
def test_server_errors_raise_provider_unavailable_after_bounded_retries(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    channel: str,
    status: int,
) -> None:
    acs_stub.fail_next(status, times=10)
    with pytest.raises(ProviderUnavailable) as raised:
        _send(channel, acs_stub, clock)
    assert raised.value.status == status
    attempts = acs_stub.requests_to(channel)
    assert len(attempts) == 1 + FAST.retries
    # Every attempt is the same idempotent request, so retrying the POST is safe.
    assert len({json.dumps(a.body, sort_keys=True) + str(a.header("operation-id")) for a in attempts}) == 1


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_passing_server_error_is_retried_into_one_message(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    channel: str,
) -> None:
    acs_stub.fail_next(503)
    _send(channel, acs_stub, clock)
    assert [r.status for r in acs_stub.requests_to(channel)] == [503, 202]
    assert len(acs_stub.accepted_emails) + len(acs_stub.accepted_sms) == 1


def test_a_long_retry_after_on_a_503_goes_back_to_the_queue_at_once(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
) -> None:
    acs_stub.fail_next(503, retry_after=120)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        send_email(email_sender(acs_stub, clock))
    assert time.monotonic() - started < 5 and len(acs_stub.requests_to("email")) == 1


@pytest.mark.parametrize("channel", ["email", "sms"])
def test_a_wrong_access_key_is_refused_by_the_signature_check(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    channel: str,
) -> None:
    with pytest.raises(ProviderAuthenticationFailed) as raised:
        _send(channel, acs_stub, clock, key=WRONG_KEY)
    assert raised.value.status == 401
    assert [r.status for r in acs_stub.recorded] == [401]
    assert not acs_stub.accepted_emails and not acs_stub.accepted_sms


def test_the_stub_refuses_a_correctly_keyed_signature_over_a_tampered_body(acs_stub: AcsStub) -> None:  # noqa: F811
    host = acs_stub.endpoint.removeprefix("http://")
    target = "/sms?api-version=2021-03-07"
    date = format_datetime(datetime.now(UTC), usegmt=True)
    signed_body = json.dumps({"from": FROM_NUMBER, "smsRecipients": [{"to": VICTIM_MOBILE}], "message": "a"})
    headers = sign("POST", target, host, date, signed_body.encode(), ACCESS_KEY)

    def post(body: str) -> int:
        connection = http.client.HTTPConnection(host, timeout=5)
        try:
            connection.request("POST", target, body=body.encode(), headers=headers)
            return connection.getresponse().status
        finally:
            connection.close()

    assert post(signed_body) == 202
    assert post(signed_body.replace('"a"', '"b"')) == 401


def test_an_unreachable_service_is_unavailable_after_bounded_retries(clock: Callable[[], datetime]) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sender = AcsEmailSender.from_connection_string(
        f"endpoint=http://127.0.0.1:{port}/;accesskey={ACCESS_KEY}",
        sender_address=SENDER,
        clock=clock,
        retry=FAST,
    )
    with pytest.raises(ProviderUnavailable):
        send_email(sender)


# --- the port, configuration and privacy -----------------------------------------------------------


def test_acs_provider_is_the_message_provider_port(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
) -> None:
    provider: MessageProvider = AcsProvider(email_sender(acs_stub, clock), sms_sender(acs_stub, clock))
    email = provider.send_email(idempotency_key="msg-e", to=VICTIM_EMAIL, content=CONTENT, metadata=METADATA)
    sms = provider.send_sms(idempotency_key="msg-s", to=VICTIM_MOBILE, text=SMS_TEXT, metadata=METADATA)
    assert email.provider_id == idempotency_uuid("email", "msg-e")
    assert sms.provider_id.startswith("Outgoing_")
    assert len(acs_stub.accepted_emails) == len(acs_stub.accepted_sms) == 1


def test_nothing_personal_reaches_the_logs(
    acs_stub: AcsStub,  # noqa: F811
    clock: Callable[[], datetime],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = AcsProvider(email_sender(acs_stub, clock), sms_sender(acs_stub, clock))
    provider.send_email(idempotency_key="msg-e", to=VICTIM_EMAIL, content=CONTENT, metadata=METADATA)
    provider.send_sms(idempotency_key="msg-s", to=VICTIM_MOBILE, text=SMS_TEXT, metadata=METADATA)
    acs_stub.fail_next_recipient(400, f"Invalid To phone number format: {VICTIM_MOBILE}")
    with pytest.raises(ProviderRejected):
        provider.send_sms(idempotency_key="msg-t", to=VICTIM_MOBILE, text=SMS_TEXT, metadata=METADATA)

    assert "msg-e" in caplog.text and "msg-s" in caplog.text  # the hand-overs are logged …
    for personal in (VICTIM_EMAIL, VICTIM_MOBILE, CONTENT.subject, CONTENT.text, SMS_TEXT):
        assert personal not in caplog.text  # … without who or what


def test_connection_strings_keep_https_and_allow_plain_http_only_to_loopback() -> None:
    assert parse_connection_string("endpoint=https://acs.uk.communication.azure.com/;accesskey=a2V5") == (
        "https://acs.uk.communication.azure.com",
        "a2V5",
    )
    assert (
        parse_connection_string("Endpoint=http://127.0.0.1:8080;AccessKey=k==")[0] == "http://127.0.0.1:8080"
    )
    with pytest.raises(ValueError, match="https"):
        parse_connection_string("endpoint=http://acs.uk.communication.azure.com/;accesskey=a2V5")
    with pytest.raises(ValueError, match="accesskey"):
        parse_connection_string("endpoint=https://acs.uk.communication.azure.com/")
