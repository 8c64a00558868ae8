"""Store CSV import: contacts, their tags and opening balances from a spreadsheet export.

Two passes. The first reads and checks every row (email, duplicates in the file and in the
database, tags, credit amounts, column count) and collects each rejected row with its reason.
The second writes the accepted rows in **one** transaction. By default any rejected row means
nothing is written; ``skip_bad`` imports the good rows and still reports the rejected ones.

Columns: ``email`` (required), ``name``, ``password``, ``tags`` (names separated by ``;``), one
column per declared credit field (a whole number of credits, entered through the ledger), and
any other column becomes a custom field.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Connection
from werkzeug.security import generate_password_hash

from shortcodes.context import Tag
from shortcodes.errors import InvalidInput, StoreError
from shortcodes.membership import vocabulary as vocab
from shortcodes.store import contacts, ledger, schema
from shortcodes.store.session import Actor, Tx

T = TypeVar("T")
Progress = Callable[[Iterable[T]], Iterable[T]]
RESERVED = ("email", "name", "password", "tags")
IMPORT_ACTOR = Actor("admin", "csv-import")


@dataclass(frozen=True, slots=True)
class Rejected:
    """A row that was not imported: its line in the file, its email (if any) and why."""

    line: int
    email: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    email: str
    name: str
    password: str
    tags: list[Tag]
    credits: dict[str, int]
    fields: dict[str, str]


@dataclass
class ImportReport:
    """What an import did: rows read, rows written (0 unless it wrote), rows rejected and why."""

    rows: int = 0
    imported: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def _identity(items: Iterable[Any]) -> Iterable[Any]:
    return items


class _Checker:
    """Pass one: turns CSV rows into checked rows or rejections."""

    def __init__(self, conn: Connection, header: list[str], credit_fields: Iterable[str]) -> None:
        self.conn = conn
        self.header = header
        self.credit = {f.casefold(): f for f in credit_fields}
        self.seen: dict[str, int] = {}
        self.tags: dict[str, Tag | None] = {}

    def check(self, line: int, raw: list[str]) -> _Row:
        if len(raw) != len(self.header):
            raise InvalidInput(f"has {len(raw)} columns; the header has {len(self.header)}")
        if not all(_is_text(v) for v in raw):
            raise InvalidInput("is not UTF-8 text (save the file as UTF-8)")
        values = dict(zip(self.header, (v.strip() for v in raw), strict=True))
        email = contacts.normalize_email(values.get("email", ""))
        if email in self.seen:
            raise InvalidInput(f"repeats {email}, already on line {self.seen[email]}")
        self.seen[email] = line
        return _Row(
            line,
            email,
            values.get("name", ""),
            values.get("password", ""),
            self.tag_list(values.get("tags", "")),
            self.amounts(values),
            {
                k: v
                for k, v in values.items()
                if k not in RESERVED and k.casefold() not in self.credit and v
            },
        )

    def tag_list(self, text: str) -> list[Tag]:
        found = []
        for name in (n.strip() for n in text.split(";")):
            if not name:
                continue
            if name.casefold() not in self.tags:
                try:
                    self.tags[name.casefold()] = contacts.resolve_tag(self.conn, name)
                except StoreError:
                    self.tags[name.casefold()] = None
            tag = self.tags[name.casefold()]
            if tag is None:
                raise InvalidInput(f"names unknown tag {name!r}")
            found.append(tag)
        return found

    def amounts(self, values: dict[str, str]) -> dict[str, int]:
        out = {}
        for column, text in values.items():
            declared = self.credit.get(column.casefold())
            if declared is None or not text:
                continue
            try:
                vocab.amount_text(text)
            except ValueError:
                raise InvalidInput(
                    f"{column} must be a whole number of credits (0 or more), got {text!r}"
                ) from None
            if int(text):
                out[declared] = int(text)
        return out


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_csv(
    path: Path, credit_fields: Iterable[str] = ()
) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The normalized header and the (line, values) rows of a CSV file; refuses a bad header
    (one naming a credit field of ``credit_fields`` misspelled, too)."""
    # surrogateescape keeps a bad byte in its row, so that row alone is rejected with its line.
    handle = path.open(newline="", encoding="utf-8-sig", errors="surrogateescape")
    reader = csv.reader(handle, strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise InvalidInput(
            f"{path}: cannot read a header line: {exc or 'the file is empty'}"
        ) from exc
    if not all(_is_text(h) for h in header):
        handle.close()
        raise InvalidInput(f"{path}: the header is not UTF-8 text (save the file as UTF-8)")
    _check_header(path, header, handle)
    try:
        _check_lookalikes(path, header, credit_fields)
    except InvalidInput:
        handle.close()
        raise

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            while True:
                try:
                    raw = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as exc:
                    raise InvalidInput(f"{path}:{reader.line_num}: unreadable CSV: {exc}") from exc
                if any(v.strip() for v in raw):
                    yield reader.line_num, raw

    return [h if h.casefold() not in RESERVED else h.casefold() for h in header], rows()


def _check_header(path: Path, header: list[str], handle: Any) -> None:
    folded = [h.casefold() for h in header]
    problem = None
    if "email" not in folded:
        problem = "the header has no 'email' column"
    elif len(set(folded)) != len(folded):
        problem = "the header names a column twice"
    else:
        bad = [
            h
            for h in header
            if h.casefold() not in RESERVED and not vocab.accepts(vocab.field_name, h)
        ]
        if bad:
            problem = f"column {bad[0]!r} is not a field name (letters, digits, underscores)"
    if problem:
        handle.close()
        raise InvalidInput(f"{path}: {problem}")


def _check_lookalikes(path: Path, header: list[str], credit_fields: Iterable[str]) -> None:
    """Refuse a column named like a credit field without its spelling (``credits`` for
    ``_Credits``): it would become a custom field and the balance would stay 0."""
    fields = {f.casefold().lstrip("_"): f for f in credit_fields}
    exact = {f.casefold() for f in credit_fields}
    for column in header:
        folded = column.casefold()
        if folded not in exact and folded.lstrip("_") in fields:
            wanted = fields[folded.lstrip("_")]
            raise InvalidInput(
                f"{path}: column {column!r} looks like the credit field {wanted!r}; name it "
                f"{wanted!r} to import balances (a custom field may not share its name)"
            )


def check_file(
    conn: Connection, path: Path, credit_fields: Iterable[str], progress: Progress[Any] = _identity
) -> tuple[list[_Row], ImportReport]:
    """Pass one: every row checked against the file and the database."""
    header, rows = read_csv(path, credit_fields)
    checker = _Checker(conn, header, credit_fields)
    good, report = [], ImportReport()
    for line, raw in progress(rows):
        report.rows += 1
        try:
            good.append(checker.check(line, raw))
        except StoreError as exc:
            email = raw[header.index("email")].strip() if len(raw) == len(header) else ""
            email = email if _is_text(email) else ""
            report.rejected.append(Rejected(line, email, str(exc)))
    _reject_existing(conn, good, report)
    return [r for r in good if r.line not in {x.line for x in report.rejected}], report


def _reject_existing(conn: Connection, rows: list[_Row], report: ImportReport) -> None:
    t = schema.contacts
    for start in range(0, len(rows), 500):
        chunk = {r.email: r for r in rows[start : start + 500]}
        for email in conn.execute(select(t.c.email).where(t.c.email.in_(list(chunk)))).scalars():
            report.rejected.append(Rejected(chunk[email].line, email, f"{email} already exists"))
    report.rejected.sort(key=lambda r: r.line)


def write_rows(tx: Tx, rows: list[_Row], digest: str, progress: Progress[Any] = _identity) -> int:
    """Pass two, inside one transaction: contacts, tags and opening balances (as ledger entries)."""
    for row in progress(rows):
        hashed = generate_password_hash(row.password) if row.password else None
        contact_id = contacts.add_contact(tx, row.email, row.name, hashed, row.fields)
        for tag in row.tags:
            contacts.apply_tag(tx, contact_id, tag, source="csv-import")
        for name, amount in row.credits.items():
            key = f"import:{digest}:{row.line}:{name}"
            ledger.credit(
                tx, contact_id, name, amount, key, "opening balance (CSV import)", IMPORT_ACTOR
            )
    return len(rows)


def file_digest(path: Path) -> str:
    """A short content hash of the file: part of each opening balance's idempotency key."""
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:16]
