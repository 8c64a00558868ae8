"""The render context: who is looking (contact, tags, fields, balances), from where, on which site.

Contexts are read-only snapshots. Rendering reads them and never writes to a store; the host
builds a fresh one for each request from the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Tag:
    """A CRM tag: an access key a contact holds, named by id and by name."""

    id: int
    name: str


def _is_int_ref(ref: str) -> bool:
    return ref.isdigit() and ref.isascii()


# A balance is plain ASCII digits (str.isdigit would also accept "²" or Arabic-Indic digits).
_INT_TEXT = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True, slots=True, init=False)
class Contact:
    """A logged-in visitor: id, email, tags and fields (credit balances are fields too).

    Tag and field names are matched case-insensitively, as Memberium does.
    """

    id: int
    email: str
    tags: tuple[Tag, ...]
    fields: Mapping[str, Any]
    _tag_ids: frozenset[int]
    _tag_names: frozenset[str]
    _fields_ci: Mapping[str, Any]

    def __init__(
        self,
        id: int,
        email: str = "",
        tags: Iterable[Tag] = (),
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        tags = tuple(tags)
        fields = dict(fields or {})
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "email", email)
        object.__setattr__(self, "tags", tags)
        object.__setattr__(self, "fields", fields)
        # Indexes built once so every tag test and field read on a page is a set/dict lookup.
        object.__setattr__(self, "_tag_ids", frozenset(t.id for t in tags))
        object.__setattr__(self, "_tag_names", frozenset(t.name.casefold() for t in tags))
        object.__setattr__(self, "_fields_ci", {k.casefold(): v for k, v in fields.items()})

    def has_tag(self, ref: int | str | Tag) -> bool:
        """True if the contact holds the tag named by ``ref``: a Tag, an id, or a name."""
        if isinstance(ref, Tag):
            return ref.id in self._tag_ids
        if isinstance(ref, int):
            return ref in self._tag_ids
        ref = ref.strip()
        if _is_int_ref(ref):
            return int(ref) in self._tag_ids
        return ref.casefold() in self._tag_names

    def has_field(self, name: str) -> bool:
        """True if the field exists (even when empty)."""
        return name.casefold() in self._fields_ci

    def field(self, name: str, default: Any = None) -> Any:
        """The field's value, looked up case-insensitively; ``default`` when it does not exist."""
        return self._fields_ci.get(name.casefold(), default)

    def balance(self, name: str = "_Credits") -> int | Decimal | None:
        """A credit balance as an int (an exact Decimal for a field with decimals), or None
        when the contact has no such numeric field."""
        value = self.field(name)
        if isinstance(value, bool):
            return None
        if isinstance(value, int | Decimal):
            return value
        if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
            return int(value)
        return None


class Signer(Protocol):
    """What the action button needs from the host: a way to mint signed single-use tokens."""

    def sign_action(
        self, contact_id: int, action_id: str, params: Mapping[str, str]
    ) -> str:  # pragma: no cover - protocol
        """Return a token binding the contact, the actionset and its parameters."""
        ...


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The parts of the HTTP request that pages may read (``{{request.path}}``)."""

    path: str = "/"


@dataclass(frozen=True, slots=True)
class SiteInfo:
    """Site-wide values pages may read (``{{site.url}}``, ``{{site.name}}``)."""

    url: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a render may read. ``Context()`` (or ``contact=None``) is an anonymous visitor.

    ``show_errors`` picks what a failing shortcode shows when the environment is not strict: an
    escaped inline notice, then its safe fallback (authors, previews, the default), or only the
    fallback (visitors): nothing, or for a gate its fail branch, never the pass branch.
    """

    contact: Contact | None = None
    request: RequestInfo = field(default_factory=RequestInfo)
    site: SiteInfo = field(default_factory=SiteInfo)
    signer: Signer | None = None
    csrf_token: str = ""
    show_errors: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def logged_in(self) -> bool:
        """True when a contact is logged in."""
        return self.contact is not None


ANONYMOUS = Context()
