"""``python -m shortcodes``: the operator CLI."""

from __future__ import annotations

import sys

from shortcodes.cli import main

sys.exit(main())
