"""The builtin membership shortcodes, registered through the public API like any theme's."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shortcodes.environment import Environment


def register(env: Environment) -> None:
    """Register every builtin shortcode on ``env``."""
