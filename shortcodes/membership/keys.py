"""The keys of ``site.toml``, documented where they are declared: the one configuration schema.

Each table's reader declares what the table may hold as one :class:`Keys`: the key names, each
with its type, default, meaning and an example value. :meth:`~.source.Node.table` takes nothing
else as the allowed keys, so every key the loader accepts is a documented key; the documentation
site's ``site.toml`` reference is generated from :data:`TABLES` at each build, and a test loads
every example. Tables whose keys are the site's own names (``[tags]``, ``[products.<id>]``'s
ids, ``[actionsets.<id>]``, parameters) are documented by their parent's entry and by the
``Keys`` of what each entry holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Key:
    """One key: its type (as a reader says it), meaning, default and an example TOML value."""

    type: str
    doc: str
    #: The default as written in TOML ("" when the key has none or is required).
    default: str = ""
    #: A value as written in TOML; the examples of a table together form a valid table.
    example: str = ""
    required: bool = False


#: Every declared table by where it is written (``site``, ``products.<id>``, ``[[rules]]``...),
#: in the order they were declared.
TABLES: dict[str, Keys] = {}


class Keys(Mapping[str, Key]):
    """The keys one table may hold, registered in :data:`TABLES` under ``where``."""

    def __init__(self, where: str, doc: str, keys: Mapping[str, Key]) -> None:
        self.where = where
        self.doc = doc
        self._keys = dict(keys)
        TABLES[where] = self

    def __getitem__(self, name: str) -> Key:
        return self._keys[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keys({self.where!r}, {list(self._keys)!r})"
