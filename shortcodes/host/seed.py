"""Host demo seeding: create the site's tags and the demo contacts from ``seed.toml`` on first run.

Seeding is safe to run from several workers at once and again on every start: a contact that
exists already is left alone (its balance may have changed since), and the starting credits of a
new one go through the ledger under a fixed key, so they are never given twice.

```toml
[[contacts]]
email = "ann@example.com"
name = "Ann"
password = "ann-demo-pass"
tags = ["Owns Course B"]
credits = 60
fields = { FirstName = "Ann" }
```
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from werkzeug.security import generate_password_hash

from shortcodes.errors import ConfigError, DuplicateContact, UnknownContact
from shortcodes.store import contacts, ledger
from shortcodes.store.facade import Store
from shortcodes.store.session import SYSTEM, Tx

_KEYS = {"email", "name", "password", "tags", "credits", "fields"}


def load_seed(path: Path) -> list[dict[str, Any]]:
    """The ``[[contacts]]`` of a seed file, checked (an error names the file and the entry)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the seed file: {exc}", file=str(path)) from exc
    people = data.get("contacts", [])
    if not isinstance(people, list):
        raise ConfigError("'contacts' must be an array of tables", file=str(path))
    for index, person in enumerate(people):
        if not isinstance(person, dict) or "email" not in person or set(person) - _KEYS:
            raise ConfigError(
                f"each contact has email and optionally {', '.join(sorted(_KEYS - {'email'}))}",
                file=str(path),
                key=f"contacts[{index}]",
            )
    return people


def seed(store: Store, path: Path) -> int:
    """Create the site's declared tags and every missing contact of ``path``; returns how many."""
    store.sync_tags()
    if not path.is_file():
        return 0
    created = 0
    for person in load_seed(path):
        if _exists(store, person["email"]):
            continue  # checked first so a restart does not pay for hashing every password
        try:
            store.run_in_transaction(lambda tx, p=person: _add(tx, p))  # type: ignore[misc]
        except DuplicateContact:
            continue  # seeded on an earlier start, or by another worker right now
        created += 1
    return created


def _exists(store: Store, email: str) -> bool:
    try:
        store.contact_id(email)
    except UnknownContact:
        return False
    return True


def _add(tx: Tx, person: dict[str, Any]) -> int:
    """Create one contact with its tags and starting credits, all or nothing."""
    password = person.get("password")
    hashed = generate_password_hash(password) if password else None
    contact_id = contacts.add_contact(
        tx, person["email"], person.get("name", ""), hashed, person.get("fields", {})
    )
    for tag in person.get("tags", []):
        contacts.apply_tag(tx, contact_id, contacts.resolve_tag(tx.conn, tag), "seed")
    credits = int(person.get("credits", 0))
    if credits:
        key = f"seed:{person['email']}"
        ledger.credit(tx, contact_id, "_Credits", credits, key, "Welcome credits", SYSTEM)
    return contact_id
