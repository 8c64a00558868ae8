"""The simulated checkout exists only when ``[site] demo_payments = true``; ``check`` warns of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from shortcodes.cli import main
from shortcodes.membership.config import parse_config
from tests.support.host import logged_in, make_app, store
from tests.support.sites import demo_copy


@pytest.fixture
def real_site_app(template_db: Path, tmp_path: Path) -> Flask:
    """The demo site with ``demo_payments`` left out, as a real site has it."""
    site = demo_copy(tmp_path / "site", demo_payments=False)
    return make_app(template_db, tmp_path / "instance", SITE_DIR=site)


def test_without_demo_payments_every_checkout_url_is_404_and_credits_nothing(
    real_site_app: Flask,
) -> None:
    poor = logged_in(real_site_app, "poor@example.com")
    poor.get("/credits")
    for product in ("credits-50", "credits-300", "all-access", "bogus"):
        assert poor.post(f"/checkout/{product}").status_code == 404
    assert store(real_site_app).balance("poor@example.com") == 5


def test_without_demo_payments_a_checkout_get_is_404_too(real_site_app: Flask) -> None:
    assert real_site_app.test_client().get("/checkout/credits-50").status_code == 404


def test_the_demo_site_keeps_its_simulated_checkout(app: Flask) -> None:
    poor = logged_in(app, "poor@example.com")
    poor.get("/credits")
    assert poor.post("/checkout/credits-50").status_code == 303
    assert store(app).balance("poor@example.com") == 55


def test_the_credits_page_of_the_demo_says_the_payment_is_simulated(app: Flask) -> None:
    html = logged_in(app, "poor@example.com").get("/credits")
    assert "the payment is simulated on this demo site" in html


def test_demo_payments_defaults_to_off() -> None:
    assert parse_config('[site]\nname = "x"\n').host.demo_payments is False
    assert parse_config('[site]\nname = "x"\n').warnings == ()


def test_check_warns_with_file_line_and_column_and_still_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.toml").write_text('[site]\nname = "x"\ndemo_payments = true\n')
    assert main(["check", "--site", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"{tmp_path / 'site.toml'}:3:1: warning: site.demo_payments: the simulated checkout is "
        "on: any logged-in visitor gets products for free at /checkout/<product>; never set it "
        "on a site that takes real payments\n"
    )
    assert out == (
        f"{tmp_path / 'site.toml'}: ok: 0 tags, 0 actionsets, 0 products, 0 rules, 0 pages\n"
    )


def test_check_refuses_a_demo_payments_that_is_not_a_boolean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.toml").write_text('[site]\ndemo_payments = "yes"\n')
    assert main(["check", "--site", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"{tmp_path / 'site.toml'}:2:1: error: site.demo_payments: must be true or false, "
        "got 'yes'\n"
    )
