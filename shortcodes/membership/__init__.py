"""The membership model: what a site declares and what its buttons and rules may do.

``source`` (site.toml with positions), ``vocabulary`` (names, tags, fields, amounts, durations,
URLs: each rule once), ``steps`` (the one step registry of actionsets and rules),
``actionsets`` (what a button runs), ``config`` (site.toml read once into one
:class:`~shortcodes.membership.config.SiteConfig`).
"""
