"""The one place test helpers live; every test folder imports them as ``tests.support.<module>``.

* ``paths`` - the repository root, the demo site and the spec-case folder.
* ``clock`` - ``MovableClock``, the business time tests move by hand.
* ``backends`` - SQLite templates and per-worker PostgreSQL schemas; one empty database per test.
* ``db`` - table dumps that prove "nothing written", row counts, contacts with a balance.
* ``visitors`` - browser-like visitors (Flask test client and real HTTP) that send the CSRF token.
* ``host`` - the demo site's logins and host apps on a copied, seeded database.
* ``live_server`` - ``python server.py`` / gunicorn on a free loopback port.
* ``automations`` - the automations test site and a harness that drains the worker.
* ``fixture_loader`` - the readable spec-case files in ``tests/fixtures/*.txt``.
* ``wp_handlers`` - the shortcode handlers of WordPress's own suite.
* ``buyer`` - a child process that runs actionsets (run as ``python tests/support/buyer.py``).
"""
