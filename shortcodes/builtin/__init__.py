"""The builtin membership shortcodes, registered through the public API like any theme's.

One module per family: ``conditionals`` (login and tag gates), ``compare`` (``memb_if``),
``contact`` (``memb_contact``), ``actions`` (action buttons) and ``credits`` (balance, history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shortcodes.builtin import actions, compare, conditionals, contact, credits

if TYPE_CHECKING:
    from shortcodes.environment import Environment


def register(env: Environment) -> None:
    """Register every builtin shortcode on ``env``."""
    for family in (conditionals, compare, contact, actions, credits):
        family.register(env)
