from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.signing import SignatureRejected, new_secret, signature_headers, verify

BODY = json.dumps({"type": "demo.created", "data": {"id": "abc", "note": "été"}}).encode()
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def test_new_secret_is_whsec_base64_of_32_random_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_new_secret_signs_what_the_reference_library_verifies() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    headers = signature_headers([secret], "msg_1", now, BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_signature_headers_shape() -> None:
    headers = signature_headers([new_secret()], "msg_1", T0, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(T0.timestamp()))
    version, _, signature = headers["webhook-signature"].partition(",")
    assert version == "v1"
    assert len(base64.b64decode(signature, validate=True)) == 32


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    old, new = new_secret(), new_secret()
    headers = signature_headers([old, new], "msg_rot", datetime.now(UTC), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(BODY, headers) == json.loads(BODY)
    assert Webhook(new).verify(BODY, headers) == json.loads(BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_non_utc_timestamp_is_converted_not_relabelled() -> None:
    # The reference sign() does replace(tzinfo=utc): an aware +02:00 time would be signed 2 h off.
    paris_summer = timezone(timedelta(hours=2))
    local = datetime.now(UTC).astimezone(paris_summer)
    secret = new_secret()
    headers = signature_headers([secret], "msg_tz", local, BODY)
    assert headers["webhook-timestamp"] == str(int(local.timestamp()))
    Webhook(secret).verify(BODY, headers)


def test_naive_timestamp_and_bad_secret_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        signature_headers([new_secret()], "m", datetime(2025, 1, 1), BODY)
    with pytest.raises(ValueError, match="malformed webhook secret"):
        signature_headers(["whsec_not*base64!"], "m", T0, BODY)
    with pytest.raises(ValueError, match="at least one secret"):
        signature_headers([], "m", T0, BODY)


def _signed(secrets: list[str], at: datetime = T0, body: bytes = BODY) -> dict[str, str]:
    return signature_headers(secrets, "msg_in", at, body)


def test_verify_accepts_and_returns_the_message_id() -> None:
    secret = new_secret()
    assert verify([secret], _signed([secret]), BODY, now=T0) == "msg_in"


@pytest.mark.parametrize("offset", [-299, 299])
def test_verify_accepts_within_tolerance(offset: int) -> None:
    secret = new_secret()
    now = T0 + timedelta(seconds=offset)
    assert verify([secret], _signed([secret]), BODY, now=now) == "msg_in"


def test_verify_accepts_any_of_several_secrets_and_any_header_case() -> None:
    current, previous = new_secret(), new_secret()
    headers = {key.title(): value for key, value in _signed([previous]).items()}
    assert "Webhook-Signature" in headers
    assert verify([current, previous], headers, BODY, now=T0) == "msg_in"


def test_verify_accepts_a_request_signed_by_the_reference_library() -> None:
    secret = new_secret()
    signature = Webhook(secret).sign("msg_ref", T0, BODY.decode())
    headers = {
        "webhook-id": "msg_ref",
        "webhook-timestamp": str(int(T0.timestamp())),
        "webhook-signature": signature,
    }
    assert verify([secret], headers, BODY, now=T0) == "msg_ref"


def test_verify_refuses_a_tampered_body() -> None:
    secret = new_secret()
    with pytest.raises(SignatureRejected, match="no signature matches any active secret"):
        verify([secret], _signed([secret]), BODY.replace(b"abc", b"abd"), now=T0)


def test_verify_refuses_a_wrong_secret() -> None:
    with pytest.raises(SignatureRejected, match="no signature matches") as caught:
        verify([new_secret()], _signed([new_secret()]), BODY, now=T0)
    assert "1 secret(s) tried" in caught.value.reason


def test_verify_refuses_a_stale_timestamp_saying_by_how_much() -> None:
    secret = new_secret()
    with pytest.raises(SignatureRejected) as caught:
        verify([secret], _signed([secret]), BODY, now=T0 + timedelta(minutes=6))
    reason = caught.value.reason
    assert "too old" in reason
    assert "360 s" in reason
    assert "tolerance 300 s" in reason


def test_verify_refuses_a_future_timestamp() -> None:
    secret = new_secret()
    with pytest.raises(SignatureRejected, match="too new: 360 s in the future"):
        verify([secret], _signed([secret]), BODY, now=T0 - timedelta(minutes=6))


def test_verify_uses_the_real_clock_by_default() -> None:
    secret = new_secret()
    assert verify([secret], _signed([secret], datetime.now(UTC)), BODY) == "msg_in"
    with pytest.raises(SignatureRejected, match="too old"):
        verify([secret], _signed([secret], T0), BODY)


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        (["webhook-signature"], "missing header(s): webhook-signature"),
        (["webhook-id", "webhook-timestamp"], "missing header(s): webhook-id, webhook-timestamp"),
    ],
)
def test_verify_names_missing_headers(drop: list[str], expected: str) -> None:
    secret = new_secret()
    headers = {k: v for k, v in _signed([secret]).items() if k not in drop}
    with pytest.raises(SignatureRejected) as caught:
        verify([secret], headers, BODY, now=T0)
    assert caught.value.reason == expected


@pytest.mark.parametrize("timestamp", ["soon", "1.7e9", "-5", "１２３"])
def test_verify_refuses_a_timestamp_that_is_not_a_number(timestamp: str) -> None:
    secret = new_secret()
    headers = {**_signed([secret]), "webhook-timestamp": timestamp}
    with pytest.raises(SignatureRejected, match="is not a number"):
        verify([secret], headers, BODY, now=T0)


@pytest.mark.parametrize("signature", ["v1", "v1,a,b", "v1,!!!", "v2,AAAA", ""])
def test_verify_refuses_malformed_signatures_without_crashing(signature: str) -> None:
    # The reference verify raises a bare ValueError on "v1" or "v1,a,b".
    secret = new_secret()
    headers = {**_signed([secret]), "webhook-signature": signature}
    with pytest.raises(SignatureRejected):
        verify([secret], headers, BODY, now=T0)


def test_verify_refuses_when_no_secret_is_configured() -> None:
    with pytest.raises(SignatureRejected, match="no active secret"):
        verify([], _signed([new_secret()]), BODY, now=T0)
