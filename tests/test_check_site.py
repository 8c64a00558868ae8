"""``python -m shortcodes check`` on pages: one error of each kind, golden output, exact positions.

The site ``tests/fixtures/checksite`` has a clean home page and one page per kind of problem;
``tests/fixtures/checksite/expected.txt`` is the exact stderr, paths relative to the site.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shortcodes.cli import main
from shortcodes.environment import Environment
from shortcodes.host.sitecheck import SiteFacts, check_page
from tests.support.paths import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
SITE = FIXTURES / "checksite"


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shortcodes", "check", "--site", str(SITE), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_check_reports_every_kind_of_page_error_with_file_line_and_column() -> None:
    """Front matter keys and values (the offer's shortcodes among them), typos, theme attribute
    types, unclosed gates, values that must exist (actionset, tag, product, credit field, local
    URL) and HTML contexts, in order."""
    done = _check()
    expected = (SITE / "expected.txt").read_text("utf-8")
    assert done.returncode == 1
    assert done.stderr.replace(f"{SITE}/", "") == expected
    assert done.stdout == ""


def test_check_json_holds_the_same_findings() -> None:
    """--format json prints one document on stdout with the same problems, and exits 1."""
    done = _check("--format", "json")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    lines = [
        f"{p['file']}:{p['line']}:{p['column']}: {p['severity']}: {p['message']}"
        for p in document["problems"]
    ]
    expected = (SITE / "expected.txt").read_text("utf-8").splitlines()
    assert [line.replace(f"{SITE}/", "") for line in lines] == expected
    assert (document["ok"], document["errors"], document["warnings"]) == (False, 15, 2)
    assert document["summary"]["pages"] == 9


def test_a_clean_site_exits_0_with_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only the clean pages: no finding, exit 0, the summary counts the pages."""
    (tmp_path / "pages" / "courses").mkdir(parents=True)
    (tmp_path / "site.toml").write_text((SITE / "site.toml").read_text("utf-8"), "utf-8")
    for page in ("index.md", "courses/index.md"):
        (tmp_path / "pages" / page).write_text((SITE / "pages" / page).read_text("utf-8"), "utf-8")
    assert main(["check", "--site", str(tmp_path), "--themes", str(ROOT / "themes")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert (
        out == f"{tmp_path / 'site.toml'}: ok: 2 tags, 1 actionsets, 1 products, 0 rules, 2 pages\n"
    )


def test_a_config_error_in_json_is_one_problem(tmp_path: Path) -> None:
    """A site.toml that does not load stops the check, in JSON too (summary null)."""
    (tmp_path / "site.toml").write_text("[site]\nname = 5\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "shortcodes", "check", "--site", str(tmp_path), "--format", "json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "ok": False, "errors": 1, "warnings": 0, "summary": None,
        "problems": [{"file": str(tmp_path / "site.toml"), "line": 2, "column": 1,
                      "severity": "error", "message": "site.name: must be text, got 5"}],
    }  # fmt: skip


def test_an_unknown_format_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--format xml is refused by the argument parser (exit 2), naming the choices."""
    with pytest.raises(SystemExit) as info:
        main(["check", "--format", "xml"])
    assert info.value.code == 2
    assert "invalid choice: 'xml' (choose from 'text', 'json')" in capsys.readouterr().err


def test_schema_prints_the_registry_with_the_sites_values() -> None:
    """schema: every shortcode with its attributes and types, and the values the site allows."""
    done = subprocess.run(
        [sys.executable, "-m", "shortcodes", "schema", "--site", str(SITE)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    schema = json.loads(done.stdout)
    button = schema["shortcodes"]["checkout_button"]
    assert button["attributes"][0] == {
        "name": "product", "type": "str", "required": True, "default": None,
        "doc": "a product id from site.toml",
    }  # fmt: skip
    assert button["values"] == {"product": ["credits-50"]}
    assert schema["shortcodes"]["memb_actionset_button"]["values"]["action_id"] == ["buy-b"]
    credit = schema["shortcodes"]["creditbutton"]
    assert {a["name"]: a["type"] for a in credit["attributes"]}["tag_id"] == "tag"
    assert credit["source"] == str(ROOT / "themes" / "default" / "shortcodes" / "creditbutton.html")
    assert schema["site"]["tag"] == ["Gold", "Owns Course B"]


def test_schema_of_a_site_that_does_not_load_is_an_error_line(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text("[site\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "shortcodes", "schema", "--site", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith(f"error: {tmp_path / 'site.toml'}:1:6: not valid TOML")


def test_an_offers_findings_point_into_its_front_matter_line() -> None:
    """The offer is checked like the body; its findings sit under its text on its line, also
    when the key is indented and spaced from its colon."""
    text = '---\naccess: Gold\n  offer :  [memb_actionset_button action_id="nope"]\n---\nbody\n'
    facts = SiteFacts(tags=frozenset({"Gold"}))
    assert [f.format() for f in check_page(Environment(), facts, text, "p.md")] == [
        "p.md:3:35: error: front matter 'offer': [memb_actionset_button] action_id: "
        "no actionset 'nope' in site.toml"
    ]
