"""HTML contexts with contact data: what a visitor controls never becomes code in the page.

The text-in, text-out cases are in ``tests/fixtures/improvements.txt`` and ``wordpress.txt``;
these run the builtin ``[memb_contact]`` with hostile field values, and check the region scan.
"""

from __future__ import annotations

import pytest

from shortcodes import Contact, Context, Environment
from shortcodes.html import html_regions, strip_unsafe_schemes

MALLORY = Context(
    contact=Contact(
        id=9,
        email="m@example.com",
        fields={
            "City": "javascript:alert(document.cookie)",
            "Site": " JaVa\tScRiPt:alert(1)",
            "FirstName": '"><img src=x onerror=alert(1)>',
        },
    ),
    show_errors=False,
)


@pytest.fixture(scope="module")
def env() -> Environment:
    return Environment()


def test_a_contact_field_cannot_make_a_javascript_link(env: Environment) -> None:
    page = '<a href="[memb_contact fields=City]">a</a><a href="[memb_contact fields=Site]">b</a>'
    assert (
        str(env.render(page, MALLORY))
        == '<a href="alert(document.cookie)">a</a><a href="alert(1)">b</a>'
    )


def test_a_contact_field_cannot_leave_its_attribute(env: Environment) -> None:
    page = "<a title=\"[memb_contact fields=FirstName]\" data-x='[memb_contact fields=FirstName]'>"
    out = str(env.render(page, MALLORY))
    assert out == (
        '<a title="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" '
        "data-x='&#34;&gt;&lt;img src=x onerror=alert(1)&gt;'>"
    )


def test_contact_data_never_reaches_a_script_or_an_event_handler(env: Environment) -> None:
    page = '<script>var n = "[memb_contact fields=FirstName]";</script><b onclick="[memb_contact fields=City]">'
    assert str(env.render(page, MALLORY)) == page


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/a?b=1&amp;c=2", "https://example.com/a?b=1&amp;c=2"),
        ("/relative/path", "/relative/path"),
        ("mailto:a@example.com", "mailto:a@example.com"),
        ("javascript:alert(1)", "alert(1)"),
        ("data:text/html,x", "text/html,x"),
        ("vbscript:javascript:x", "x"),
        ("java&#x09;script&colon;x", "x"),
        ("badhttp://host/", "//host/"),
    ],
)
def test_strip_unsafe_schemes_keeps_http_https_mailto_and_relative(
    value: str, expected: str
) -> None:
    assert strip_unsafe_schemes(value) == expected


def test_html_regions_of_a_page_that_never_closes_a_comment_end_with_the_page() -> None:
    text = "a <!-- b [x] c"
    (region,) = html_regions(text)
    assert (region.start, region.end, region.kind) == (2, len(text), "skip")
