"""Signing: the action tokens buttons carry, and the HMAC on webhooks in and out.

Three schemes, each defined once here. **Webhooks** (inbound ``/hooks/*`` and the outbox's
outgoing deliveries alike) carry ``X-Shortcodes-Timestamp: <unix seconds>`` and
``X-Shortcodes-Signature: sha256=HMAC-SHA256(secret, "<timestamp>.<body>")``: see
:func:`webhook_signature` and :func:`signed_headers`. **Action tokens** are described below.

An action button (``[memb_actionset_button]``, a theme's ``action_button()``) renders a POST form
with one hidden token minted by :meth:`ActionSigner.sign_action`. The token binds:

* the contact the page was rendered for (a token lifted from someone else's page is refused),
* the actionset id (a token for ``buy-course-b`` cannot run ``buy-course-c``),
* the parameters the actionset declares, such as ``cost`` and ``tag`` (so ``cost="50"`` cannot
  become ``cost="0"``: the host runs the actionset with :attr:`ActionClaim.params`, never with
  form fields),
* a fresh random nonce, and the issue time (tokens expire after ``max_age`` seconds).

Tokens are signed (HMAC-SHA256 through itsdangerous, with a salt used for nothing else), not
encrypted: a visitor can read the parameters of their own button, which are on the page anyway,
but cannot change a single byte without the site's secret.

**Single use is not enforced here.** Verification is a pure function of the token, the secret and
the clock; it cannot know whether a token was already spent. The store makes a token single-use:
it runs the actionset in one transaction keyed by :attr:`ActionClaim.idempotency_key` (derived
from the nonce), so a double click or a replayed POST runs the actionset once and the second
request gets the first one's answer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from itsdangerous import BadData, BadSignature, TimestampSigner, URLSafeTimedSerializer

from shortcodes.errors import (
    ActionTokenExpired,
    ActionTokenInvalid,
    ActionTokenWrongAction,
    ActionTokenWrongContact,
)

__all__ = [
    "CLOCK_SKEW",
    "MAX_TOKEN_LENGTH",
    "SALT",
    "AccountSigner",
    "ActionClaim",
    "ActionSigner",
]

SALT = "shortcodes.action-token.v1"
"""Namespaces these signatures: no other signed value of the site can pass as an action token."""

MAX_TOKEN_LENGTH = 8192
"""Longer tokens are refused before any decoding; real ones are a few hundred characters."""

CLOCK_SKEW = 60
"""Seconds a token may appear to come from the future (workers whose clocks differ slightly)."""


@dataclass(frozen=True, slots=True)
class ActionClaim:
    """What a verified token says: who may run which actionset with which parameters.

    ``issued_at`` is the issue time in whole Unix seconds (from the signer's clock).
    ``params`` is read-only.
    """

    contact_id: int
    action_id: str
    params: Mapping[str, str]
    nonce: str
    issued_at: int

    @property
    def idempotency_key(self) -> str:
        """The key the store runs this action under, exactly once: ``action:<nonce>``."""
        return f"action:{self.nonce}"


class _ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer reading time from an injected clock (tests move it)."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        """Now, in whole seconds, by the injected clock."""
        return int(self._clock())


class ActionSigner:
    """Mints and checks action tokens; the host's implementation of ``context.Signer``.

    ``secret`` signs new tokens; tokens signed with any of ``fallback_secrets`` still verify, so
    a secret can be rotated without breaking the buttons on pages already served. ``max_age`` is
    how many seconds a token stays valid; ``clock`` returns the time in seconds (``time.time``).
    """

    def __init__(
        self,
        secret: str | bytes,
        max_age: int = 3600,
        clock: Callable[[], float] = time.time,
        *,
        fallback_secrets: Iterable[str | bytes] = (),
    ) -> None:
        keys = [_key(s) for s in fallback_secrets] + [_key(secret)]
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
            raise ValueError(f"max_age must be a positive number of seconds, got {max_age!r}")
        self.max_age = max_age
        self._clock = clock
        # itsdangerous signs with the last key and accepts any of them.
        self._serializer = URLSafeTimedSerializer(
            keys,
            salt=SALT,
            signer=_ClockedSigner,
            signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
        )

    def sign_action(self, contact_id: int, action_id: str, params: Mapping[str, str]) -> str:
        """A URL-safe token binding the contact, the actionset, its parameters and a new nonce.

        Raises ``TypeError``/``ValueError`` for arguments no page should produce (a non-int
        contact id, an empty action id, non-text parameter names or values).
        """
        if isinstance(contact_id, bool) or not isinstance(contact_id, int):
            raise TypeError(f"contact_id must be an int, got {contact_id!r}")
        if not isinstance(action_id, str) or not action_id:
            raise ValueError(f"action_id must be a non-empty string, got {action_id!r}")
        for name, value in params.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(
                    f"action parameters must be text, got {name!r}: {value!r} "
                    "(format numbers as strings, e.g. cost='50')"
                )
        payload = {
            "c": contact_id,
            "a": action_id,
            "p": dict(params),
            "n": secrets.token_urlsafe(16),
        }
        return self._serializer.dumps(payload)

    def verify_action(
        self, token: str, contact_id: int, action_id: str | None = None
    ) -> ActionClaim:
        """Check ``token`` for ``contact_id`` (and ``action_id`` when given); return its claim.

        Checks, in order: the token is readable and its signature is ours
        (:class:`ActionTokenInvalid`), it is not older than ``max_age``
        (:class:`ActionTokenExpired`), it was issued to ``contact_id``
        (:class:`ActionTokenWrongContact`) and for ``action_id`` (:class:`ActionTokenWrongAction`).
        It does not check single use: the store does, with :attr:`ActionClaim.idempotency_key`.
        """
        claim = self._read(token)
        age = int(self._clock()) - claim.issued_at
        if age > self.max_age:
            raise ActionTokenExpired(age, self.max_age)
        if age < -CLOCK_SKEW:
            raise ActionTokenInvalid(
                f"invalid action token: issued {-age} seconds in the future (check server clocks)"
            )
        if claim.contact_id != contact_id:
            raise ActionTokenWrongContact(claim.contact_id, contact_id)
        if action_id is not None and claim.action_id != action_id:
            raise ActionTokenWrongAction(claim.action_id, action_id)
        return claim

    def _read(self, token: str) -> ActionClaim:
        """Verify the signature and decode the payload; expiry is checked by the caller."""
        if not isinstance(token, str) or not token.strip():
            raise ActionTokenInvalid("invalid action token: it is empty")
        if len(token) > MAX_TOKEN_LENGTH:
            raise ActionTokenInvalid(
                f"invalid action token: {len(token)} characters is too long to be one of ours"
            )
        try:
            # max_age=None: age is judged by verify_action against the same clock, so that a
            # token from slightly in the future is tolerated and the messages are ours.
            payload, signed_at = self._serializer.loads(token, max_age=None, return_timestamp=True)
        except BadSignature:
            raise ActionTokenInvalid(
                "invalid action token: it was altered, truncated or signed with another secret"
            ) from None
        except BadData:
            raise ActionTokenInvalid("invalid action token: its contents cannot be read") from None
        return _claim(payload, int(signed_at.timestamp()))


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the action token secret must be a non-empty str or bytes")
    return secret


def _claim(payload: object, issued_at: int) -> ActionClaim:
    """Check the shape of a signed payload (a future format change must not crash the host)."""
    malformed = ActionTokenInvalid("invalid action token: its contents are not an action claim")
    if not isinstance(payload, dict):
        raise malformed
    contact_id, action_id = payload.get("c"), payload.get("a")
    params, nonce = payload.get("p"), payload.get("n")
    if isinstance(contact_id, bool) or not isinstance(contact_id, int):
        raise malformed
    if not isinstance(action_id, str) or not isinstance(nonce, str) or not nonce:
        raise malformed
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise malformed
    return ActionClaim(contact_id, action_id, MappingProxyType(params), nonce, issued_at)


# -- account links -----------------------------------------------------------------------------

#: What each account link is for and how many seconds it stays valid.
ACCOUNT_LINKS = {"verify": 48 * 3600, "reset": 3600, "email": 24 * 3600, "device": 365 * 86400}


class AccountSigner:
    """Signs the links account emails carry (verify a sign-up, reset a password, confirm a new
    email) and the known-device cookie: each purpose has its own salt and lifetime
    (:data:`ACCOUNT_LINKS`), so no token of one kind passes as another.

    Like action tokens they are signed, not encrypted, and single use comes from what they bind:
    a verify link names a pending sign-up that following it deletes, a reset link binds a digest
    of the password hash that the reset replaces, an email link binds the old address.
    """

    def __init__(self, secret: str | bytes, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                [_key(secret)],
                salt=f"shortcodes.account-{purpose}.v1",
                signer=_ClockedSigner,
                signer_kwargs={"clock": clock, "digest_method": hashlib.sha256},
            )
            for purpose in ACCOUNT_LINKS
        }

    def sign(self, purpose: str, payload: Mapping[str, Any]) -> str:
        """A URL-safe token for ``purpose`` carrying ``payload``."""
        return str(self._serializers[purpose].dumps(dict(payload)))

    def load(self, purpose: str, token: str) -> dict[str, Any] | None:
        """The payload of a valid, unexpired token for ``purpose``; None for anything else."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            payload = self._serializers[purpose].loads(
                token, max_age=ACCOUNT_LINKS[purpose] + CLOCK_SKEW
            )
        except BadData:
            return None
        return payload if isinstance(payload, dict) else None


def digest(text: str) -> str:
    """A short SHA-256 digest of ``text`` (what a reset link binds of the password hash)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


# -- webhooks ----------------------------------------------------------------------------------

#: The headers that carry a webhook's timestamp and signature, in and out.
TIMESTAMP_HEADER = "X-Shortcodes-Timestamp"
SIGNATURE_HEADER = "X-Shortcodes-Signature"


def webhook_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"`` with ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_signature_matches(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """Whether ``given`` is the signature of ``body`` at ``timestamp`` (constant time)."""
    return hmac.compare_digest(webhook_signature(secret, timestamp, body), given.strip())


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The timestamp and signature headers a sender adds to ``body``."""
    stamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: webhook_signature(secret, stamp, body)}
