"""CSV import on both databases: good rows arrive whole, broken rows are reported with reasons."""

from __future__ import annotations

from pathlib import Path

import pytest

from shortcodes.errors import InvalidInput
from shortcodes.store import Store
from tests.support.db import buyer, dump

GOOD = """\
email,name,FirstName,tags,_Credits
ann@example.com,Ann Smith,Ann,Gold;Owns Course B,60
BOB@example.com,Bob,Bob,,0
carol@example.com,Carol,,gold,
"""

BROKEN = """\
email,name,tags,_Credits
ann@example.com,Ann,Gold,60
not-an-email,Nobody,,5
dave@example.com,Dave,Platinum,5
erin@example.com,Erin,,-5
frank@example.com,Frank,,ten
ann@example.com,Ann again,,1
gina@example.com,Gina
zed@example.com,Zed,,7
"""


def write(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_rows_import_contacts_tags_fields_and_opening_balances(
    store: Store, tmp_path: Path
) -> None:
    report = store.import_contacts(write(tmp_path, GOOD))
    assert (report.rows, report.imported, report.rejected) == (3, 3, [])
    ann = store.get_contact("ann@example.com")
    assert ann.has_tag("Gold")
    assert ann.has_tag("owns course b")
    assert (ann.field("FirstName"), ann.field("Name"), ann.balance()) == ("Ann", "Ann Smith", 60)
    assert store.history("ann@example.com").entries[0].reason == "opening balance (CSV import)"
    assert store.get_contact("bob@example.com").balance() == 0
    assert store.get_contact("carol@example.com").has_tag("Gold")


def test_broken_rows_are_reported_with_line_and_reason_and_nothing_is_written(
    store: Store, tmp_path: Path
) -> None:
    before = dump(store)
    report = store.import_contacts(write(tmp_path, BROKEN))
    assert report.imported == 0
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "not a valid email address: 'not-an-email'"),
        (4, "names unknown tag 'Platinum'"),
        (5, "_Credits must be a whole number of credits (0 or more), got '-5'"),
        (6, "_Credits must be a whole number of credits (0 or more), got 'ten'"),
        (7, "repeats ann@example.com, already on line 2"),
        (8, "has 2 columns; the header has 4"),
    ]
    assert dump(store) == before


def test_skip_bad_imports_the_good_rows_and_still_reports_the_rest(
    store: Store, tmp_path: Path
) -> None:
    report = store.import_contacts(write(tmp_path, BROKEN), skip_bad=True)
    assert report.imported == 2
    assert len(report.rejected) == 6
    assert store.get_contact("zed@example.com").balance() == 7
    assert store.get_contact("ann@example.com").balance() == 60


def test_an_email_already_in_the_database_is_rejected(store: Store, tmp_path: Path) -> None:
    buyer(store, "ann@example.com", credits=5)
    report = store.import_contacts(write(tmp_path, GOOD))
    assert [(r.line, r.reason) for r in report.rejected] == [(2, "ann@example.com already exists")]
    assert report.imported == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "cannot read a header"),
        ("name,tags\nAnn,Gold\n", "no 'email' column"),
        ("email,Email\na@b.c,a@b.c\n", "names a column twice"),
        ("email,first name\na@b.c,Ann\n", "'first name' is not a field name"),
        ('email,name\n"a@b.c,Ann\n', "unreadable CSV"),
    ],
)
def test_unreadable_files_are_refused_whole(
    store: Store, tmp_path: Path, text: str, fragment: str
) -> None:
    before = dump(store)
    with pytest.raises(InvalidInput, match=fragment):
        store.import_contacts(write(tmp_path, text))
    assert dump(store) == before


def test_a_row_that_is_not_utf8_is_rejected_with_its_line(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("email,name\nann@example.com,Ann\nbob@example.com,B\xf6b\n".encode("latin-1"))
    report = store.import_contacts(path)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "is not UTF-8 text (save the file as UTF-8)")
    ]
    assert report.imported == 0
