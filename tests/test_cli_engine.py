"""The language CLI: `python -m shortcodes lint|render`, in a real subprocess, good and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI as an operator would."""
    return subprocess.run(
        [sys.executable, "-m", "shortcodes", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_lint_prints_file_line_col_and_caret_and_exits_1_on_errors(tmp_path: Path) -> None:
    """An unclosed gate on line 2 is reported as file:2:1 with the caret line; exit code 1."""
    page = tmp_path / "page.html"
    page.write_text("Hi\n[memb_has_any_tag tagid=1]secret\n", "utf-8")
    result = run("lint", str(page), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{page}:2:1: error: [memb_has_any_tag] is never closed" in result.stdout
    assert "\n^^^^" in result.stdout


def test_lint_exits_0_on_a_clean_page(tmp_path: Path) -> None:
    """A page without problems prints nothing and exits 0."""
    page = tmp_path / "ok.html"
    page.write_text("<p>Hello [memb_contact fields=FirstName]</p>\n", "utf-8")
    result = run("lint", str(page), cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "")


def test_lint_of_a_missing_file_says_which_and_fails(tmp_path: Path) -> None:
    """A path that does not exist is a clear error, not a traceback."""
    result = run("lint", str(tmp_path / "nope.html"), cwd=tmp_path)
    assert result.returncode != 0
    assert "cannot read" in result.stderr
    assert "nope.html" in result.stderr
    assert "Traceback" not in result.stderr


def test_render_for_a_contact_picks_their_branch(tmp_path: Path) -> None:
    """render --contact shows the branch that fits the contact's tags, fields escaped."""
    page = tmp_path / "page.html"
    page.write_text(
        '[memb_has_any_tag tagid="Gold"]Hi [memb_contact fields=FirstName][else]Join us'
        "[/memb_has_any_tag]",
        "utf-8",
    )
    contact = tmp_path / "ann.json"
    contact.write_text(
        json.dumps({"id": 7, "email": "ann@example.com", "tags": [[1, "Gold"]],
                    "fields": {"FirstName": "<Ann>"}}),
        "utf-8",
    )  # fmt: skip
    result = run("render", str(page), "--contact", str(contact), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Hi &lt;Ann&gt;"
    anonymous = run("render", str(page), cwd=tmp_path)
    assert anonymous.stdout == "Join us"


def test_render_rejects_a_malformed_contact_file_with_the_expected_shape(tmp_path: Path) -> None:
    """A contact file without an id names the problem and shows the expected format."""
    page = tmp_path / "page.html"
    page.write_text("x", "utf-8")
    bad = tmp_path / "bad.json"
    for text in ('{"email": "a@b"}', "not json", '{"id": "seven"}', "[1, 2]"):
        bad.write_text(text, "utf-8")
        result = run("render", str(page), "--contact", str(bad), cwd=tmp_path)
        assert result.returncode != 0
        assert "is not a contact file" in result.stderr, text
        assert "Traceback" not in result.stderr


def test_render_strict_fails_on_page_errors_with_position(tmp_path: Path) -> None:
    """--strict turns an unclosed gate into exit 1 with file:line:col on stderr."""
    page = tmp_path / "page.html"
    page.write_text("\n\n  [memb_if value1=1]x", "utf-8")
    result = run("render", "--strict", str(page), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{page}:3:3: error: [memb_if] is never closed" in result.stderr


def test_unknown_command_and_missing_arguments_exit_2_with_usage(tmp_path: Path) -> None:
    """argparse errors: exit status 2 and a usage line, for a wrong command or no file."""
    for args in (("frobnicate",), ("lint",), ("render",), ()):
        result = run(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert "usage:" in result.stderr
