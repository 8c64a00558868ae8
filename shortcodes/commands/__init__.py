"""Subcommands of the operator CLI, one module per feature area (see ``shortcodes.cli``)."""
