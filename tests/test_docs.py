"""The shortcode reference: generated from the registry, printed by ``python -m shortcodes docs``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from shortcodes import Environment
from shortcodes.reference import reference
from shortcodes.registry import Attribute
from shortcodes.themes import load_theme

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def text() -> str:
    """The reference of the builtins plus the default theme."""
    env = Environment()
    load_theme(env, ROOT / "themes" / "default")
    return reference(env)


def sections(text: str) -> dict[str, str]:
    """Each ``### `name` `` section by name."""
    parts = re.split(r"^### `([^`]+)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_builtin_has_a_section_with_description_and_example(text: str) -> None:
    found = sections(text)
    for name in (
        "memb_is_logged_in",
        "memb_has_any_tag",
        "memb_has_all_tags",
        "memb_if",
        "memb_contact",
        "memb_actionset_button",
        "credit_balance",
        "credit_history",
        "creditbutton",
    ):
        assert name in found, name
        assert "Example:" in found[name]
        assert "```\n[" in found[name] or "```\nYou" in found[name] or "```\nHello" in found[name]


def test_aliases_are_listed_under_their_base_not_repeated(text: str) -> None:
    found = sections(text)
    assert "memb_if1" not in found
    assert "memb_compare" not in found
    assert "buy_actionset_button" not in found
    assert "`memb_compare`" in found["memb_if"]
    assert "`memb_if9`" in found["memb_if"]
    assert "`buy_actionset_button`" in found["memb_actionset_button"]


def test_attributes_are_tabulated_with_type_default_and_meaning(text: str) -> None:
    memb_if = sections(text)["memb_if"]
    assert "| `caseinsensitive` | yes/no | yes | compare text ignoring case |" in memb_if
    assert "| `test` | text | `=` |" in memb_if
    button = sections(text)["creditbutton"]
    assert "| `cost` | whole number | required | the price in credits |" in button
    assert "| `product_url` | link" in button
    assert "From theme `default`" in button


def test_gates_list_their_else_markers(text: str) -> None:
    assert "`[else_memb_has_any_tag]`, `[else_has_any_tag]`" in sections(text)["memb_has_any_tag"]


def test_other_shortcodes_and_pipes_in_cells() -> None:
    env = Environment(builtins=False)
    env.add_shortcode(
        "x",
        lambda sc, ctx: "",
        attributes=[Attribute("a", str, doc="a | b")],
        description="Does x.",
        example="[x a=1]",
    )
    env.add_shortcode("free", lambda sc, ctx: "")
    text = reference(env)
    assert "## Other shortcodes" in text
    assert "| `a` | text |  | a \\| b |" in text
    assert "Takes any attributes." in sections(text)["free"]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m shortcodes docs ...`` in a real process."""
    return subprocess.run(
        [sys.executable, "-m", "shortcodes", "docs", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_prints_the_reference_with_a_theme() -> None:
    proc = run_cli("--theme", "themes/default")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# Shortcode reference")
    assert "### `creditbutton`" in proc.stdout
    assert "### `memb_if`" in proc.stdout


def test_cli_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "ref.md"
    proc = run_cli("--no-builtins", "--theme", "themes/default", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    written = out.read_text("utf-8")
    assert "### `creditbutton`" in written
    assert "memb_if" not in written


def test_cli_reports_a_missing_theme(tmp_path: Path) -> None:
    proc = run_cli("--theme", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert "no such theme folder" in proc.stderr
