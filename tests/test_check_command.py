"""``python -m shortcodes check``: one line per problem, ``FILE:LINE:COL: error: KEY: MESSAGE``,
exit 1; exit 0 and a summary when clean. The host refuses to start with the same message."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server import create_app
from shortcodes.cli import main
from shortcodes.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

TAGS = '[tags]\n"VIP" = "membership"\n'

# (site.toml text, the problem's line:col, key and message); a position is the key's own
BAD = [
    pytest.param(
        "[site]\nname = 5\n", "2:1: error: site.name: must be text, got 5", id="wrong type"
    ),
    pytest.param(
        "[site]\ncolour = 'red'\n",
        "2:1: error: site.colour: unknown key 'colour' (expected one of: admin_tag, "
        "buy_more_url, demo_payments, name, pages, theme, url)",
        id="unknown key",
    ),
    pytest.param(
        "[sitee]\nname = 'x'\n",
        "1:1: error: sitee: unknown key 'sitee' (expected one of: accounts, actionsets, automations, "
        "credits, login, loyalty, products, rules, site, sync, tags, webhooks)",
        id="unknown section",
    ),
    pytest.param(
        '[tags]\n"-VIP" = "x"\n',
        "2:1: error: tags.-VIP: a tag name cannot contain a comma, start with '-' or be a "
        "number: '-VIP'",
        id="tag starting with a dash",
    ),
    pytest.param(
        TAGS + '[actionsets.a]\nsteps = [{ do = "credit", amount = -5 }]\n',
        "4:27: error: actionsets.a.steps[0].amount: an amount is a whole number from 0 to "
        "1000000000000, got -5",
        id="negative amount",
    ),
    pytest.param(
        TAGS + '[actionsets.a]\nsteps = [{ do = "grant", tag = "VIP", for = "1000000d" }]\n',
        "4:39: error: actionsets.a.steps[0].for: the duration '1000000d' is longer than ten years",
        id="duration too long",
    ),
    pytest.param(
        TAGS + '[[rules]]\nname = "r"\ntrigger = "login"\nsteps = [{ do = "fly" }]\n',
        "6:12: error: rules.r.steps[0].do: unknown step 'fly' (known steps: debit, credit, "
        "apply_tag, remove_tag, grant, set_field, send_email, webhook, wait, "
        "remove_tag_after, award_points, remove_points)",
        id="unknown step kind",
    ),
    pytest.param(
        "[site\n",
        "1:6: error: not valid TOML: Expected ']' at the end of a table declaration",
        id="malformed toml",
    ),
]


def _site(tmp_path: Path, text: str) -> Path:
    (tmp_path / "pages").mkdir(parents=True, exist_ok=True)
    (tmp_path / "site.toml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_check_prints_file_line_column_key_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, problem: str
) -> None:
    site = _site(tmp_path, text)
    assert main(["check", "--site", str(site)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{site / 'site.toml'}:{problem}\n")


@pytest.mark.parametrize(("text", "problem"), BAD)
def test_the_host_refuses_to_start_with_the_message_check_prints(
    tmp_path: Path, text: str, problem: str
) -> None:
    site = _site(tmp_path / "site", text)
    with pytest.raises(ConfigError) as info:
        create_app({"SITE_DIR": site, "INSTANCE_PATH": tmp_path / "instance", "SEED": False})
    assert info.value.format() == f"{site / 'site.toml'}:{problem}"


DEMO_WARNING = (
    f"{ROOT / 'site' / 'site.toml'}:11:1: warning: site.demo_payments: the simulated checkout "
    "is on: any logged-in visitor gets products for free at /checkout/<product>; never set it "
    "on a site that takes real payments\n"
)


def test_check_on_the_demo_site_warns_of_the_demo_checkout_and_exits_0() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shortcodes", "check", "--site", "site"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, DEMO_WARNING)
    assert done.stdout == (
        f"{ROOT / 'site' / 'site.toml'}: ok: 14 tags, 10 actionsets, 4 products, 10 rules, 11 pages\n"
    )


def test_check_of_a_missing_folder_names_the_file_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--site", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"{tmp_path / 'nowhere' / 'site.toml'}: error: cannot read the site configuration: "
        "No such file or directory\n"
    )


def test_columns_count_characters_not_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = 'steps = [{ do = "send_email", template = "été-ñ", subject = 5 }]'
    site = _site(tmp_path, f"[actionsets.a]\n{line}\n")
    assert main(["check", "--site", str(site)]) == 1
    column = line.index("subject") + 1  # 48 characters in, 51 bytes in
    assert capsys.readouterr().err == (
        f"{site / 'site.toml'}:2:{column}: error: actionsets.a.steps[0].subject: "
        "the value must be a non-empty text of at most 200 characters, got 5\n"
    )
