"""Run localstripe (PyPI: a Stripe-compatible server) for the tests: ``python
tests/support/localstripe_server.py --port N``.

Two adjustments to the real server, both outside its API behaviour: its store is kept in memory
(it pickles to the fixed path ``/tmp/localstripe.pickle``, which parallel test workers and other
users of the machine would share), and it gains the two Stripe endpoints it lacks, Checkout
Sessions and billing-portal Sessions, answered with objects of Stripe's shape whose ``url`` is a
page of this server. They record each request's parameters (``GET
/_config/test/sessions``) so a test sees exactly what the ``stripe`` library sent. Everything
else (customers, plans, subscriptions, invoices, charges, refunds, events and their signed
webhooks) is localstripe's own.
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

import localstripe.resources as resources
from aiohttp import web

# Before the server module creates and loads its store.
resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]

from localstripe import server  # noqa: E402 - after the store is kept in memory

SESSIONS: list[dict[str, Any]] = []


def _base(request: web.Request) -> str:
    return f"http://{request.host}"


async def create_checkout_session(request: web.Request) -> web.Response:
    """``POST /v1/checkout/sessions``: record the parameters, answer an open session."""
    params = await server.get_post_data(request) or {}
    session_id = f"cs_test_{secrets.token_hex(12)}"
    SESSIONS.append({"kind": "checkout", "id": session_id, "params": params})
    return web.json_response(
        {
            "id": session_id,
            "object": "checkout.session",
            "mode": params.get("mode"),
            "status": "open",
            "payment_status": "unpaid",
            "customer": params.get("customer"),
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "success_url": params.get("success_url"),
            "url": f"{_base(request)}/_config/test/pay/{session_id}",
            "livemode": False,
        }
    )


async def create_portal_session(request: web.Request) -> web.Response:
    """``POST /v1/billing_portal/sessions``: record the parameters, answer a session."""
    params = await server.get_post_data(request) or {}
    session_id = f"bps_test_{secrets.token_hex(12)}"
    SESSIONS.append({"kind": "portal", "id": session_id, "params": params})
    return web.json_response(
        {
            "id": session_id,
            "object": "billing_portal.session",
            "customer": params.get("customer"),
            "return_url": params.get("return_url"),
            "url": f"{_base(request)}/_config/test/portal/{session_id}",
            "livemode": False,
        }
    )


async def hosted_page(request: web.Request) -> web.Response:
    """The page a session's ``url`` opens (Stripe's hosted Checkout, in a test)."""
    kind, session_id = request.match_info["kind"], request.match_info["id"]
    html = f"<!doctype html><title>Test {kind}</title><h1>Test {kind} {session_id}</h1>"
    return web.Response(text=html, content_type="text/html")


async def recorded(request: web.Request) -> web.Response:
    """Every session request so far."""
    return web.json_response(SESSIONS)


def main() -> None:
    """Add the session endpoints and start localstripe on ``--port`` (from scratch)."""
    server.app.router.add_post("/v1/checkout/sessions", create_checkout_session)
    server.app.router.add_post("/v1/billing_portal/sessions", create_portal_session)
    server.app.router.add_get("/_config/test/sessions", recorded)
    server.app.router.add_get("/_config/test/{kind}/{id}", hosted_page)
    sys.argv = [sys.argv[0], *sys.argv[1:], "--from-scratch"]
    server.start()


if __name__ == "__main__":
    main()
