"""Tests for the signed action tokens of action buttons (shortcodes/signing.py).

Every refusal is checked by its exception type and exact message; time is moved with an
injected clock, never by sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from shortcodes.context import Context
from shortcodes.errors import (
    ActionTokenError,
    ActionTokenExpired,
    ActionTokenInvalid,
    ActionTokenWrongAction,
    ActionTokenWrongContact,
    ShortcodeError,
)
from shortcodes.membership.signing import (
    CLOCK_SKEW,
    MAX_TOKEN_LENGTH,
    SALT,
    ActionClaim,
    ActionSigner,
)
from tests.support.clock import EpochClock

SECRET = "site-secret-for-tests"
T0 = 1_800_000_000
PARAMS = {"cost": "50", "tag": "Owns Course B"}

ALTERED = "invalid action token: it was altered, truncated or signed with another secret"
UNREADABLE = "invalid action token: its contents cannot be read"
NOT_A_CLAIM = "invalid action token: its contents are not an action claim"


@pytest.fixture
def clock() -> EpochClock:
    """The signer's clock (epoch seconds, not the store's datetimes), at ``T0`` until moved."""
    return EpochClock(T0)


@pytest.fixture
def signer(clock: EpochClock) -> ActionSigner:
    return ActionSigner(SECRET, max_age=3600, clock=clock)


@pytest.fixture
def token(signer: ActionSigner) -> str:
    return signer.sign_action(7, "buy-course-b", PARAMS)


def _segments(token: str) -> list[str]:
    payload, timestamp, signature = token.split(".")[-3:]
    return [payload, timestamp, signature]


def _decode_payload(segment: str) -> dict[str, object]:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


def _encode_payload(data: dict[str, object]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _replace_char(text: str, index: int) -> str:
    swapped = "A" if text[index] != "A" else "B"
    return text[:index] + swapped + text[index + 1 :]


# --- round trip -------------------------------------------------------------------------------


def test_round_trip_returns_the_claim_that_was_signed(signer: ActionSigner, token: str) -> None:
    claim = signer.verify_action(token, 7, "buy-course-b")
    assert isinstance(claim, ActionClaim)
    assert (claim.contact_id, claim.action_id, dict(claim.params)) == (7, "buy-course-b", PARAMS)
    assert claim.issued_at == T0
    assert claim.idempotency_key == f"action:{claim.nonce}"
    assert len(claim.nonce) >= 16


def test_verify_without_action_id_checks_only_the_contact(signer: ActionSigner, token: str) -> None:
    assert signer.verify_action(token, 7).action_id == "buy-course-b"


def test_token_is_url_safe_and_compact(token: str) -> None:
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", token)
    assert len(token) < 300


def test_claim_params_are_read_only(signer: ActionSigner, token: str) -> None:
    claim = signer.verify_action(token, 7, "buy-course-b")
    with pytest.raises(TypeError):
        claim.params["cost"] = "0"  # type: ignore[index]


def test_signer_serves_as_the_context_signer(signer: ActionSigner) -> None:
    ctx = Context(signer=signer)
    assert ctx.signer is not None
    minted = ctx.signer.sign_action(3, "grant-trial", {})
    assert signer.verify_action(minted, 3, "grant-trial").params == {}


@given(st.dictionaries(st.text(max_size=20), st.text(max_size=40), max_size=6))
def test_any_text_params_round_trip_exactly(params: dict[str, str]) -> None:
    signer = ActionSigner(SECRET, clock=lambda: T0)
    minted = signer.sign_action(11, "act", params)
    assert dict(signer.verify_action(minted, 11, "act").params) == params


def test_every_token_gets_a_fresh_nonce(signer: ActionSigner) -> None:
    tokens = [signer.sign_action(7, "buy-course-b", PARAMS) for _ in range(200)]
    nonces = {signer.verify_action(t, 7).nonce for t in tokens}
    assert len(set(tokens)) == 200
    assert len(nonces) == 200


# --- tampering --------------------------------------------------------------------------------


def test_changing_any_character_of_payload_or_timestamp_is_refused(
    signer: ActionSigner, token: str
) -> None:
    payload, timestamp, _ = _segments(token)
    signed_part_length = len(payload) + 1 + len(timestamp)
    for index in range(signed_part_length):
        if token[index] == ".":
            continue
        with pytest.raises(ActionTokenInvalid) as info:
            signer.verify_action(_replace_char(token, index), 7, "buy-course-b")
        assert str(info.value) == ALTERED


def test_changing_the_signature_is_refused(signer: ActionSigner, token: str) -> None:
    # The last base64 character of a 32-byte signature also carries padding bits, so some
    # replacements decode to the very same bytes; every other position must fail.
    start = token.rindex(".") + 1
    for index in range(start, len(token) - 1):
        with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
            signer.verify_action(_replace_char(token, index), 7, "buy-course-b")


def test_params_cannot_be_changed_cost_50_to_0(signer: ActionSigner, token: str) -> None:
    payload, timestamp, signature = _segments(token)
    data = _decode_payload(payload)
    assert data["p"] == PARAMS
    data["p"] = {**PARAMS, "cost": "0"}
    forged = ".".join([_encode_payload(data), timestamp, signature])
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        signer.verify_action(forged, 7, "buy-course-b")


def test_contact_id_in_payload_cannot_be_changed(signer: ActionSigner, token: str) -> None:
    payload, timestamp, signature = _segments(token)
    data = _decode_payload(payload)
    data["c"] = 8
    forged = ".".join([_encode_payload(data), timestamp, signature])
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        signer.verify_action(forged, 8, "buy-course-b")


def test_a_token_minted_with_another_secret_is_refused(signer: ActionSigner) -> None:
    attacker = ActionSigner("guessed-secret", clock=lambda: T0)
    forged = attacker.sign_action(7, "buy-course-b", {**PARAMS, "cost": "0"})
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        signer.verify_action(forged, 7, "buy-course-b")


def test_different_secrets_do_not_verify_each_other() -> None:
    first = ActionSigner("secret-one", clock=lambda: T0)
    second = ActionSigner(b"secret-two", clock=lambda: T0)
    for minter, checker in [(first, second), (second, first)]:
        minted = minter.sign_action(7, "buy-course-b", PARAMS)
        assert minter.verify_action(minted, 7).contact_id == 7
        with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
            checker.verify_action(minted, 7)


def test_a_value_signed_by_the_same_secret_for_another_purpose_is_refused(
    signer: ActionSigner,
) -> None:
    # Same secret and digest but itsdangerous' default salt: e.g. some other signed value.
    other = URLSafeTimedSerializer(SECRET, signer_kwargs={"digest_method": hashlib.sha256})
    payload = {"c": 7, "a": "buy-course-b", "p": PARAMS, "n": "x" * 22}
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        signer.verify_action(other.dumps(payload), 7)


def test_a_signed_payload_of_the_wrong_shape_is_refused_cleanly(signer: ActionSigner) -> None:
    ours = URLSafeTimedSerializer(
        SECRET, salt=SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    shapes: list[object] = [
        [7, "buy-course-b"],
        {"c": "7", "a": "buy-course-b", "p": {}, "n": "abc"},
        {"c": True, "a": "buy-course-b", "p": {}, "n": "abc"},
        {"c": 7, "a": "buy-course-b", "p": {"cost": 50}, "n": "abc"},
        {"c": 7, "a": "buy-course-b", "p": {}, "n": ""},
        {"c": 7, "p": {}, "n": "abc"},
    ]
    for shape in shapes:
        with pytest.raises(ActionTokenInvalid, match=re.escape(NOT_A_CLAIM)):
            signer.verify_action(ours.dumps(shape), 7)


# --- garbage ----------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", ["", "   ", "\n"])
def test_empty_token_is_refused(signer: ActionSigner, garbage: str) -> None:
    with pytest.raises(ActionTokenInvalid, match=r"^invalid action token: it is empty$"):
        signer.verify_action(garbage, 7)


@pytest.mark.parametrize(
    "garbage",
    ["abc", "a.b", "a.b.c", "...", ".", "é.é.é", "\x00", "eyJ9.AAAA.AAAA", "null"],
)
def test_garbage_token_is_refused(signer: ActionSigner, garbage: str) -> None:
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        signer.verify_action(garbage, 7)


def test_every_truncation_of_a_token_is_refused(signer: ActionSigner, token: str) -> None:
    for length in range(1, len(token)):
        with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
            signer.verify_action(token[:length], 7, "buy-course-b")


def test_huge_token_is_refused_before_decoding(signer: ActionSigner, token: str) -> None:
    huge = token + "A" * MAX_TOKEN_LENGTH
    with pytest.raises(ActionTokenInvalid) as info:
        signer.verify_action(huge, 7)
    assert str(info.value) == (
        f"invalid action token: {len(huge)} characters is too long to be one of ours"
    )


def test_non_string_token_is_refused(signer: ActionSigner) -> None:
    with pytest.raises(ActionTokenInvalid, match="it is empty"):
        signer.verify_action(None, 7)  # type: ignore[arg-type]


@given(st.text(max_size=300))
def test_arbitrary_text_only_ever_raises_action_token_invalid(text: str) -> None:
    signer = ActionSigner(SECRET, clock=lambda: T0)
    with pytest.raises(ActionTokenInvalid):
        signer.verify_action(text, 7)


# --- expiry -----------------------------------------------------------------------------------


def test_token_is_valid_up_to_max_age(signer: ActionSigner, token: str, clock: EpochClock) -> None:
    clock.now = T0 + 3600
    assert signer.verify_action(token, 7, "buy-course-b").issued_at == T0


def test_token_older_than_max_age_is_expired(
    signer: ActionSigner, token: str, clock: EpochClock
) -> None:
    clock.now = T0 + 3601
    with pytest.raises(ActionTokenExpired) as info:
        signer.verify_action(token, 7, "buy-course-b")
    assert str(info.value) == (
        "action token expired: issued 3601 seconds ago, valid for 3600; "
        "reload the page for a fresh button"
    )
    assert (info.value.age, info.value.max_age) == (3601, 3600)


def test_expiry_follows_the_signers_max_age(clock: EpochClock) -> None:
    short = ActionSigner(SECRET, max_age=60, clock=clock)
    minted = short.sign_action(7, "a", {})
    clock.now = T0 + 61
    with pytest.raises(ActionTokenExpired) as info:
        short.verify_action(minted, 7)
    assert str(info.value) == (
        "action token expired: issued 61 seconds ago, valid for 60; reload the page for a fresh button"
    )
    # The same token is still fine for a signer allowing an hour.
    assert ActionSigner(SECRET, clock=clock).verify_action(minted, 7).contact_id == 7


def test_a_tampered_expired_token_reports_tampering_first(
    signer: ActionSigner, token: str, clock: EpochClock
) -> None:
    clock.now = T0 + 99_999
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        signer.verify_action(_replace_char(token, 3), 7)


def test_small_clock_skew_is_tolerated_but_a_token_from_the_future_is_not(
    clock: EpochClock,
) -> None:
    ahead = ActionSigner(SECRET, clock=lambda: T0 + CLOCK_SKEW)
    behind = ActionSigner(SECRET, clock=clock)
    assert behind.verify_action(ahead.sign_action(7, "a", {}), 7).issued_at == T0 + CLOCK_SKEW
    far = ActionSigner(SECRET, clock=lambda: T0 + 1000).sign_action(7, "a", {})
    with pytest.raises(ActionTokenInvalid) as info:
        behind.verify_action(far, 7)
    assert str(info.value) == (
        "invalid action token: issued 1000 seconds in the future (check server clocks)"
    )


# --- other contact, other action -----------------------------------------------------------------


def test_token_of_another_contact_is_refused(signer: ActionSigner, token: str) -> None:
    with pytest.raises(ActionTokenWrongContact) as info:
        signer.verify_action(token, 8, "buy-course-b")
    assert str(info.value) == "action token was issued to another contact"
    assert (info.value.token_contact_id, info.value.contact_id) == (7, 8)


def test_token_for_another_action_is_refused(signer: ActionSigner, token: str) -> None:
    with pytest.raises(ActionTokenWrongAction) as info:
        signer.verify_action(token, 7, "buy-course-c")
    assert str(info.value) == "action token is for action 'buy-course-b', not 'buy-course-c'"


def test_all_refusals_share_one_base_class() -> None:
    for error in (
        ActionTokenInvalid,
        ActionTokenExpired,
        ActionTokenWrongContact,
        ActionTokenWrongAction,
    ):
        assert issubclass(error, ActionTokenError)
    assert issubclass(ActionTokenError, ShortcodeError)


# --- secrets and arguments --------------------------------------------------------------------


def test_rotated_secret_still_verifies_tokens_signed_with_the_old_one(clock: EpochClock) -> None:
    old = ActionSigner("old-secret", clock=clock)
    rotated = ActionSigner("new-secret", clock=clock, fallback_secrets=["old-secret"])
    assert rotated.verify_action(old.sign_action(7, "a", {}), 7).contact_id == 7
    # New tokens are signed with the new secret only.
    with pytest.raises(ActionTokenInvalid, match=re.escape(ALTERED)):
        old.verify_action(rotated.sign_action(7, "a", {}), 7)


@pytest.mark.parametrize("secret", ["", b""])
def test_empty_secret_is_refused(secret: str | bytes) -> None:
    with pytest.raises(ValueError, match="secret must be a non-empty str or bytes"):
        ActionSigner(secret)


@pytest.mark.parametrize("max_age", [0, -1, True])
def test_max_age_must_be_positive_seconds(max_age: int) -> None:
    with pytest.raises(ValueError, match="max_age must be a positive number of seconds"):
        ActionSigner(SECRET, max_age=max_age)


def test_sign_action_refuses_non_text_params(signer: ActionSigner) -> None:
    with pytest.raises(TypeError, match="action parameters must be text"):
        signer.sign_action(7, "buy", {"cost": 50})  # type: ignore[dict-item]


def test_sign_action_refuses_a_non_int_contact_and_an_empty_action(signer: ActionSigner) -> None:
    with pytest.raises(TypeError, match="contact_id must be an int"):
        signer.sign_action("7", "buy", {})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="contact_id must be an int"):
        signer.sign_action(True, "buy", {})
    with pytest.raises(ValueError, match="action_id must be a non-empty string"):
        signer.sign_action(7, "", {})


def test_one_webhook_scheme_signs_what_goes_out_and_verifies_what_comes_in() -> None:
    """The outbox's headers are exactly what the inbound check accepts, and nothing else is."""
    from shortcodes.errors import HookError
    from shortcodes.host.webhooks import check_signature
    from shortcodes.membership.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers

    body = b'{"event_id": "e1"}'
    headers = signed_headers("s3cret", body, now=1_700_000_000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: "1700000000", SIGNATURE_HEADER: f"sha256={expected}"}
    check_signature("s3cret", headers, body, 1_700_000_010)
    with pytest.raises(HookError) as info:
        check_signature("other-secret", headers, body, 1_700_000_010)
    assert (info.value.status, info.value.code) == (401, "bad_signature")
