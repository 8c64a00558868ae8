"""The documentation site: MkDocs builds it --strict with the references generated from the code,
and every step, trigger, command and webhook the code knows is in a generated reference."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shortcodes.automations.rules import TRIGGERS
from shortcodes.cli import build_parser
from shortcodes.docsite import (
    _argument_rows,
    _subcommands,
    config_tables,
    example_site_toml,
    example_toml,
    pages,
)
from shortcodes.errors import ConfigError
from shortcodes.host.hookops import OPERATIONS
from shortcodes.membership.config import SECTIONS, parse_config
from shortcodes.membership.steps import STEPS
from tests.support.paths import ROOT

# Not --quiet: it hides the warnings that --strict counts, and a broken link would pass.
MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]


def build(config: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MKDOCS, "--config-file", str(config), "--site-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin", "HOME": str(out.parent)},
    )


@pytest.mark.slow
def test_the_site_builds_strict_with_generated_references_and_the_api(tmp_path: Path) -> None:
    out = tmp_path / "site"
    done = build(ROOT / "mkdocs.yml", out)
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (out / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "shortcodes credits add" in cli
    steps = (out / "reference" / "steps-and-triggers" / "index.html").read_text(encoding="utf-8")
    assert all(f"<code>{name}</code>" in steps for name in [*STEPS, *TRIGGERS])
    api = (out / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "shortcodes.Environment" in api
    assert "def compile" not in api
    assert (out / "tutorials" / "lending-library" / "index.html").is_file()


@pytest.mark.slow
def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    for part in ("docs", "themes"):
        shutil.copytree(ROOT / part, tmp_path / part)
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](no-such-page.md)\n", "utf-8")
    done = build(tmp_path / "mkdocs.yml", tmp_path / "out")
    assert done.returncode == 1
    assert "no-such-page.md" in done.stdout + done.stderr


def _check(toml: str) -> None:
    parse_config(toml, "example.toml")


@pytest.mark.parametrize("name", list(STEPS))
def test_each_step_kind_is_documented_with_an_example_that_loads(name: str) -> None:
    kind = STEPS[name]
    assert kind.doc, f"step {name} has no doc"
    assert kind.example, f"step {name} has no example"
    if "actionset" in kind.allowed:
        _check(f'[actionsets.example]\ntitle = "Example"\nsteps = [{kind.example}]\n')
    if "rule" in kind.allowed:
        _check(f'[[rules]]\nname = "example"\ntrigger = "login()"\nsteps = [{kind.example}]\n')


@pytest.mark.parametrize("name", list(TRIGGERS))
def test_each_trigger_is_documented_with_an_example_that_loads(name: str) -> None:
    trigger = TRIGGERS[name]
    assert trigger.doc
    assert trigger.example.startswith(f"{name}(")
    # unlocked(item) names an item of some drip: the example's item is the drip example's.
    drip = '[[rules]]\nname = "drip"\ntrigger = "login"\ndrip = { access = ["VIP"], items = [{ name = "week-1" }] }\n'
    _check(
        (drip if name == "unlocked" else "")
        + f'[[rules]]\nname = "example"\ntrigger = "{trigger.example}"\nsteps = [{STEPS["credit"].example}]\n'
    )


def test_the_site_toml_reference_example_is_a_site_toml_the_loader_accepts() -> None:
    config = parse_config(example_site_toml(), "example.toml")
    assert config.host.name == "Credit Academy"
    assert list(config.automations.rules) == ["monthly-credits"]
    assert config.actions.actionsets["example"].params["cost"].default == 20


def test_every_declared_key_has_a_type_and_a_meaning_on_the_reference_page() -> None:
    page = pages(ROOT)["reference/site-toml.md"]
    for keys in [SECTIONS, *config_tables()]:
        assert keys.doc, keys.where
        for name, key in keys.items():
            assert key.type, (keys.where, name)
            assert key.doc, (keys.where, name)
            assert f"| `{name}` | {key.type} |" in page, (keys.where, name)


@pytest.mark.parametrize("where", [k.where for k in config_tables()])
def test_a_key_missing_from_the_reference_is_refused_by_the_loader(where: str) -> None:
    header = example_toml(next(k for k in config_tables() if k.where == where)).splitlines()[0]
    text = example_site_toml().replace(f"{header}\n", f"{header}\nundocumented_key = 1\n", 1)
    with pytest.raises(ConfigError, match="unknown key 'undocumented_key'"):
        parse_config(text, "example.toml")


def test_every_command_and_argument_is_in_the_cli_reference() -> None:
    page = pages(ROOT)["reference/cli.md"]
    for _, parser in _subcommands(build_parser()):
        assert f"## `{parser.prog}`" in page
        for action in parser._actions:
            if action.option_strings and not isinstance(action, argparse._HelpAction):
                assert f"`{', '.join(action.option_strings)}`" in page, (parser.prog, action)


def test_every_cli_argument_has_a_help_text() -> None:
    missing = [
        (parser.prog, action.dest)
        for _, parser in [("", build_parser()), *_subcommands(build_parser())]
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and not action.help
    ]
    assert missing == []


def test_an_argument_without_help_fails_the_cli_reference() -> None:
    parser = argparse.ArgumentParser(prog="shortcodes demo")
    parser.add_argument("contact")
    with pytest.raises(ValueError, match="shortcodes demo contact: the argument has no help text"):
        _argument_rows(parser)


def test_every_inbound_webhook_is_in_the_webhook_reference() -> None:
    page = pages(ROOT)["reference/webhooks.md"]
    for name in [*OPERATIONS, "events/<name>", "stripe"]:
        assert f"### `POST /hooks/{name}`" in page


def test_the_shortcode_reference_lists_the_theme_shortcodes_too() -> None:
    page = pages(ROOT)["reference/shortcodes.md"]
    assert page.startswith("# Shortcode reference\n")
    assert "### `creditbutton`" in page
    assert "### `memb_if`" in page
