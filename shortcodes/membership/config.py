"""The site configuration: ``site.toml`` read once into one typed, immutable :class:`SiteConfig`.

The file is decoded once (:class:`~shortcodes.membership.source.SiteSource`); every section is
then validated by its owner against the one vocabulary (:mod:`.vocabulary`) and the one step
registry (:mod:`.steps`): the membership model owns ``[credits]``, ``[tags]`` and
``[actionsets]``; automations own ``[[rules]]``, ``[loyalty]`` and ``[automations]``; the host
owns ``[site]``, ``[webhooks]``, ``[login]``, ``[accounts]`` and ``[products]``. An unknown top-level key is an
error, as is every problem a section finds: one :class:`~shortcodes.errors.ConfigError` with the
file, line, column and key. ``python -m shortcodes check`` prints it; the host refuses to start
with it. Nothing reads ``site.toml`` any other way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shortcodes.automations.rules import AutomationConfig, load_rules
from shortcodes.errors import ConfigError
from shortcodes.membership.actionsets import SiteActions, load_actions
from shortcodes.membership.keys import Key, Keys
from shortcodes.membership.site import SiteSettings, load_host
from shortcodes.membership.source import Node, SiteSource

#: Every top-level key of site.toml, by owner (each section's own keys are declared by its
#: reader, beside the code that reads them).
SECTIONS = Keys(
    "",
    "The sections of `site.toml`; every one is optional.",
    {
        "site": Key("table", "the site: name, theme, admin tag", "", ""),
        "webhooks": Key("table", "the inbound webhooks' shared secret", "", ""),
        "login": Key("table", "failed-login limits", "", ""),
        "accounts": Key("table", "sign-up and the account-mail limits", "", ""),
        "products": Key(
            "tables `[products.<id>]`", "what a payment for each product grants", "", ""
        ),
        "credits": Key("table", "the credit fields", "", ""),
        "tags": Key(
            "table of tag name = category",
            "every tag the site uses; `check` refuses a tag that is not declared here (when the table is present)",
            "",
            '{ "Owns Course A" = "product", "All Access" = "membership" }',
        ),
        "actionsets": Key("tables `[actionsets.<id>]`", "what each button runs", "", ""),
        "rules": Key("array of tables `[[rules]]`", "automation rules", "", ""),
        "loyalty": Key("table", "loyalty points and stages", "", ""),
        "automations": Key("table", "email and webhook delivery", "", ""),
    },
)


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """A site's whole configuration, validated: the host's, the store's and automations' parts."""

    file: str
    host: SiteSettings
    actions: SiteActions
    automations: AutomationConfig
    #: Problems that do not stop the site but an operator must see (``check`` prints them).
    warnings: tuple[ConfigError, ...] = ()


def load_config(site_dir: str | os.PathLike[str]) -> SiteConfig:
    """The configuration of a site folder (its ``site.toml``)."""
    return load_config_file(Path(site_dir).resolve() / "site.toml")


def load_config_file(path: str | os.PathLike[str]) -> SiteConfig:
    """The configuration in ``path``; the site folder is the file's folder."""
    file = Path(path)
    return _validate(SiteSource.read(file), file.resolve().parent)


def parse_config(text: str, file: str = "site.toml", site_dir: str | None = None) -> SiteConfig:
    """The configuration in a site.toml text (``file`` names it in errors)."""
    return _validate(SiteSource.parse(text, file), Path(site_dir or ".").resolve())


def _validate(source: SiteSource, folder: Path) -> SiteConfig:
    root = source.root().table(SECTIONS, what="a TOML document")
    actions = load_actions(root)
    host = load_host(root, folder, actions)
    automations = load_rules(root, actions, host.webhook_secret)
    return SiteConfig(source.file, host, actions, automations, _warnings(root, host))


def _warnings(root: Node, host: SiteSettings) -> tuple[ConfigError, ...]:
    """What ``check`` warns about: a switch that is fine on a demo and dangerous in production."""
    if not host.demo_payments:
        return ()
    switch = root.child("site").child("demo_payments")
    return (
        switch.fail(
            "the simulated checkout is on: any logged-in visitor gets products for free at "
            "/checkout/<product>; never set it on a site that takes real payments"
        ),
    )
