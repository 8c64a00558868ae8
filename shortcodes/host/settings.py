"""Host settings: where the site, themes, instance folder and database are, for host and CLI alike.

:func:`resolve_settings` is the one place that decides; the host (``create_app``, through the
extension's ``init_app``) and every CLI command call it, so both always work on the same site,
instance folder and database. For each setting the first of these that is set wins:

1. an explicit value: the app's config (``create_app(config)``) or a CLI flag (``--site``,
   ``--instance``, ``--database-url``);
2. the environment, ``SHORTCODES_<KEY>``, read with Flask's ``Config.from_prefixed_env``
   (``SHORTCODES_SITE_DIR``, ``SHORTCODES_THEMES_DIR``, ``SHORTCODES_INSTANCE_PATH``,
   ``SHORTCODES_DATABASE_URL``);
3. for the database only, plain ``DATABASE_URL`` (what hosting platforms set), then SQLite in the
   instance folder (see :func:`shortcodes.store.database.default_url`);
4. a folder in the working directory: ``./site``, ``./themes``, ``./instance``. The demo site is
   served from the repository root (``./dev serve`` runs there); relative paths are resolved
   against the working directory, never against the installed package.

``SITE_DIR`` is the site folder, holding ``site.toml``; the CLI also accepts the path of the
``site.toml`` file itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Config

from shortcodes.errors import SettingsError
from shortcodes.store.database import default_url

#: The prefix of every environment variable the host and the CLI read.
ENV_PREFIX = "SHORTCODES"
SITE_FILE = "site.toml"

#: Settings that are text even when they look like JSON: ``from_prefixed_env`` would turn a
#: secret of digits into an int, so these keep the environment's exact string.
TEXT_KEYS = (
    "SECRET_KEY",
    "DATABASE_URL",
    "WEBHOOK_SECRET",
    "SITE_DIR",
    "THEMES_DIR",
    "INSTANCE_PATH",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Where one site's files and data are; every path is absolute."""

    site_file: Path
    themes_dir: Path
    instance_path: Path
    database_url: str
    #: False when the site is the ``./site`` default rather than named by a flag or setting.
    site_named: bool = True

    @property
    def site_dir(self) -> Path:
        """The site folder (``site.toml``, ``pages/``, ``seed.toml``)."""
        return self.site_file.parent

    @property
    def database_in_instance(self) -> bool:
        """True when the database is the SQLite file inside the instance folder."""
        return self.database_url == default_url(self.instance_path, environ={})

    def require_site(self) -> Path:
        """The site's ``site.toml``, or a :class:`SettingsError` that says where it looked."""
        if not self.site_file.is_file():
            raise SettingsError(
                f"no site found: {self.site_file} does not exist. Run from the folder that "
                f"holds site/, or set {ENV_PREFIX}_SITE_DIR (--site for the CLI) to the site folder"
            )
        return self.site_file


def environment() -> dict[str, Any]:
    """The ``SHORTCODES_*`` settings of the process environment, prefix removed."""
    config = Config(os.getcwd())
    config.from_prefixed_env(ENV_PREFIX)
    return {**config, **text_settings()}


def text_settings() -> dict[str, str]:
    """The :data:`TEXT_KEYS` of the environment, exactly as written there."""
    found = {}
    for key in TEXT_KEYS:
        value = os.environ.get(f"{ENV_PREFIX}_{key}")
        if value is not None:
            found[key] = value
    return found


def resolve_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Where the site, themes, instance folder and database are (see the module docstring).

    ``overrides`` holds explicit values under the config keys ``SITE_DIR``, ``THEMES_DIR``,
    ``INSTANCE_PATH`` and ``DATABASE_URL``; a value that is None or empty counts as not given.
    """
    given = {**_set(environment()), **_set(overrides or {})}
    instance = _absolute(given.get("INSTANCE_PATH", "instance"))
    return Settings(
        site_file=_site_file(_absolute(given.get("SITE_DIR", "site"))),
        themes_dir=_absolute(given.get("THEMES_DIR", "themes")),
        instance_path=instance,
        database_url=str(given.get("DATABASE_URL") or default_url(instance)),
        site_named="SITE_DIR" in given,
    )


def _set(values: Mapping[str, Any]) -> dict[str, Any]:
    """The entries that give a value: None and blank text leave the setting to the next source."""
    return {
        k: v
        for k, v in values.items()
        if v is not None and not (isinstance(v, str) and not v.strip())
    }


def _absolute(value: Any) -> Path:
    # Relative to where the operator runs the command, never to the installed package.
    return (Path.cwd() / Path(str(value)).expanduser()).resolve()


def _site_file(path: Path) -> Path:
    """``site.toml`` of a site folder; a path ending in ``.toml`` names the file itself."""
    return path if path.suffix == ".toml" else path / SITE_FILE
