"""Test support: deliver a host app's outbox the way the worker does and read the ``.eml`` files.

The emails are real: the outbox's delivery writes them to ``<instance>/outbox/<id>.eml`` (no SMTP
server is configured in tests), and these helpers parse those files back.
"""

from __future__ import annotations

import email
import re
from email.message import Message
from pathlib import Path

from flask import Flask

from shortcodes.automations.outbox import Delivery

_LINK = re.compile(r"https?://\S+")


def deliver(app: Flask) -> list[Message]:
    """Deliver every due outbox message of ``app``; every ``.eml`` written so far, oldest first."""
    state = app.extensions["shortcodes"]
    instance = Path(app.config["INSTANCE_PATH"])
    Delivery(state.store, state.automations, instance).deliver_due(1000)
    files = sorted((instance / "outbox").glob("*.eml"))
    return [email.message_from_bytes(path.read_bytes()) for path in files]


def mails_to(app: Flask, address: str) -> list[Message]:
    """The delivered emails addressed to ``address``, oldest first."""
    return [m for m in deliver(app) if m["To"] == address]


def body(message: Message) -> str:
    """The text of a plain-text email."""
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def link_in(message: Message) -> str:
    """The one link of an account email, as a path on the site (``/verify?token=...``)."""
    found = _LINK.findall(body(message))
    assert len(found) == 1, found
    return re.sub(r"^https?://[^/]+", "", found[0])
