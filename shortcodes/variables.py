"""``{{variables}}`` in attribute values: which exist, and what they read from the context.

``{{contact.FIELD}}`` (any field, credit balances included), ``{{contact.id}}``,
``{{contact.email}}``, ``{{request.path}}``, ``{{site.url}}`` and ``{{site.name}}``. An unknown
variable becomes the empty string (and lint reports it). Substituted values are data: they are
never parsed for shortcodes.
"""

from __future__ import annotations

import re
from typing import Final

from shortcodes.context import Context

VAR_RE: Final = re.compile(r"\{\{\s*([A-Za-z_]\w*)(?:\.([^\s{}]+))?\s*\}\}")

_KNOWN: Final = {"request": frozenset({"path"}), "site": frozenset({"url", "name"})}


def is_known(root: str, name: str | None) -> bool:
    """True if ``{{root.name}}`` names something a context can provide."""
    if root == "contact":
        return bool(name)
    return name is not None and name in _KNOWN.get(root, frozenset())


def resolve(ctx: Context, root: str, name: str | None) -> str:
    """The text value of ``{{root.name}}`` for this context ("" when unknown or missing)."""
    if not is_known(root, name) or name is None:
        return ""
    if root == "contact":
        contact = ctx.contact
        if contact is None:
            return ""
        lowered = name.lower()
        if lowered == "id":
            return str(contact.id)
        if lowered == "email":
            return contact.email
        value = contact.field(name)
        return "" if value is None else str(value)
    value = getattr(ctx.request if root == "request" else ctx.site, name, "")
    return "" if value is None else str(value)


def split_vars(text: str) -> list[str | tuple[str, str | None]]:
    """Split text into literal strings and (root, name) variable references."""
    parts: list[str | tuple[str, str | None]] = []
    pos = 0
    for m in VAR_RE.finditer(text):
        if m.start() > pos:
            parts.append(text[pos : m.start()])
        parts.append((m.group(1), m.group(2)))
        pos = m.end()
    if pos < len(text):
        parts.append(text[pos:])
    return parts
