"""Pure pieces of the events slice: URL safety, signatures, backoff, the SQS message shape."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid

import pytest

from payportal.errors import ValidationFailed
from payportal.events.delivery import RetryPolicy, sign
from payportal.events.endpoints import check_endpoint_url, is_public_address, normalize_events
from payportal.events.models import OutboxEvent
from payportal.events.publisher import backoff_seconds, is_fifo, message_entry


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.8.8",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata service
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",  # noqa: S104 -- an address under test, not a bind
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 around 169.254.169.254
        "fe80::1%eth0",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert is_public_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "https://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/internal",
        "http://0.0.0.0:6543/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
    ],
)
def test_private_targets_are_refused_unless_allowed(url):
    with pytest.raises(ValidationFailed) as refused:
        check_endpoint_url(url, allow_private=False)
    assert refused.value.code == "invalid_url"
    assert refused.value.details[0]["field"] == "url"
    assert check_endpoint_url(url, allow_private=True) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://93.184.216.34/x", "http"),
        ("file:///etc/passwd", "http"),
        ("javascript:alert(1)", "http"),
        ("https:///no-host", "no host"),
        ("https://user:pw@93.184.216.34/x", "password"),
        ("https://93.184.216.34/x#frag", "fragment"),
        ("https://93.184.216.34:99999/x", "valid"),
    ],
)
def test_malformed_urls_are_refused_even_when_private_targets_are_allowed(url, reason):
    with pytest.raises(ValidationFailed) as refused:
        check_endpoint_url(url, allow_private=True)
    assert reason in refused.value.message


def test_a_public_address_passes():
    url = "https://93.184.216.34:8443/payportal?x=1"
    assert check_endpoint_url(url, allow_private=False) == url


def test_event_subscriptions_are_known_types_or_everything():
    assert normalize_events(["payment.completed", "payment.failed", "payment.completed"]) == [
        "payment.completed",
        "payment.failed",
    ]
    assert normalize_events(["*"]) == ["*"]
    for bad in ([], ["*", "payment.completed"], ["payment.teleported"]):
        with pytest.raises(ValidationFailed):
            normalize_events(bad)


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"id":"evt"}'
    header = sign("whsec_abc", 1700000000, body)
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"


def test_relay_backoff_doubles_from_one_second_to_ten_minutes_with_jitter():
    for attempts, base in [(1, 1), (2, 2), (3, 4), (6, 32)]:
        delays = {backoff_seconds(attempts) for _ in range(50)}
        assert all(0.8 * base <= d <= 1.2 * base for d in delays)
        assert len(delays) > 1  # jittered
    assert all(backoff_seconds(40) <= 600 for _ in range(50))
    assert max(backoff_seconds(40) for _ in range(50)) > 500


def test_webhook_retry_policy_grows_and_caps():
    policy = RetryPolicy(first_seconds=5, cap_seconds=3600)
    assert 4 <= policy.delay(1) <= 6
    assert 32 <= policy.delay(4) <= 48
    assert policy.delay(30) <= 3600
    assert policy.window == dt.timedelta(days=3)


def _event(**fields) -> OutboxEvent:
    return OutboxEvent(
        id=fields.pop("id", uuid.uuid4()),
        merchant_id=fields.pop("merchant_id", uuid.uuid4()),
        type="payment.completed",
        data={"amount": 1050},
        created_at=dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
        **fields,
    )


def test_fifo_message_entry_carries_group_dedup_id_and_attributes():
    event = _event(payment_id=uuid.uuid4(), correlation_id="c-1", attempts=0)
    entry = message_entry(event, fifo=True)
    assert entry["MessageGroupId"] == f"merchant-{event.merchant_id}"
    assert entry["MessageDeduplicationId"] == str(event.id)
    assert {k: v["StringValue"] for k, v in entry["MessageAttributes"].items()} == {
        "eventType": "payment.completed",
        "merchantId": str(event.merchant_id),
        "paymentId": str(event.payment_id),
        "timestamp": "2024-05-01T12:00:00Z",
        "correlationId": "c-1",
    }
    assert json.loads(entry["MessageBody"]) == {
        "id": str(event.id),
        "type": "payment.completed",
        "created_at": "2024-05-01T12:00:00Z",
        "merchant_id": str(event.merchant_id),
        "correlation_id": "c-1",
        "data": {"amount": 1050},
    }


def test_standard_message_entry_has_no_fifo_ids_and_no_empty_attributes():
    entry = message_entry(_event(payment_id=None, correlation_id=None), fifo=False)
    assert "MessageGroupId" not in entry
    assert "MessageDeduplicationId" not in entry
    assert set(entry["MessageAttributes"]) == {"eventType", "merchantId", "timestamp"}
    assert is_fifo("https://sqs.eu-west-1.amazonaws.com/1/events.fifo")
    assert not is_fifo("https://sqs.eu-west-1.amazonaws.com/1/events")
