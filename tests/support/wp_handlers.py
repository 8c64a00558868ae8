"""Test support: the shortcode handlers of WordPress's own suite, registered through the public API.

These mirror the handlers of ``tests/phpunit/tests/shortcode.php`` in WordPress/wordpress-develop so
that its cases can be ported with their expected output. Two contract differences shape them:

* a handler gets ``(sc, ctx)`` instead of ``($atts, $content, $tag)``;
* a plain ``str`` result is HTML-escaped by the engine, so the one handler that emits HTML (``img``)
  returns ``Markup`` and escapes the attribute values it interpolates.

``register_extras`` adds a few handlers the WordPress suite has no need for but the spec's
improvements do: an enclosing gate, a wrapper that renders its content, and handlers that return
HTML-looking text, real HTML, or raise. ``run_case`` runs one fixture case (see the mode list at
the top of ``tests/fixtures/wordpress.txt``) on a fresh environment with all of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from markupsafe import Markup

from shortcodes import Contact, Context, Environment, RequestInfo, Shortcode, SiteInfo, Tag
from tests.support.fixture_loader import Case

Handler = Callable[[Shortcode, Context], "str | Markup"]


@dataclass(frozen=True)
class Call:
    """What one run of ``test-shortcode-tag`` saw: its name, attributes (in order) and content."""

    name: str
    attrs: list[tuple[int | str, str]]
    content: str | None


@dataclass
class Recorder:
    """Collects the calls of ``test-shortcode-tag``, like the PHP suite's ``$this->atts``."""

    calls: list[Call] = field(default_factory=list)

    def handler(self, sc: Shortcode, ctx: Context) -> str:
        """Record the invocation and render nothing (the PHP handler returns null)."""
        attrs = [(key, str(value)) for key, value in sc.attrs.items()]
        self.calls.append(Call(sc.name, attrs, sc.content))
        return ""


def footag(sc: Shortcode, ctx: Context) -> str:
    """``[footag foo="bar"]`` → ``foo = bar``."""
    return f"foo = {sc.attrs.get('foo', '')}"


def bartag(sc: Shortcode, ctx: Context) -> str:
    """Like footag, with WordPress's ``shortcode_atts`` default ``no foo``."""
    return f"foo = {sc.attrs.get('foo', 'no foo')}"


def baztag(sc: Shortcode, ctx: Context) -> Markup:
    """``[baztag]content[/baztag]`` → ``content = `` followed by the rendered content."""
    # WordPress passes '' for a tag without content; the engine passes None.
    body = sc.render_content() if sc.content is not None else Markup("")
    return Markup("content = ") + body


def dumptag(sc: Shortcode, ctx: Context) -> str:
    """One ``key = value`` line per attribute, in order."""
    return "".join(f"{key} = {value}\n" for key, value in sc.attrs.items())


def _returns(text: str) -> Handler:
    def handler(sc: Shortcode, ctx: Context) -> str:
        return text

    handler.__doc__ = f"Always renders {text!r}."
    return handler


def img(sc: Shortcode, ctx: Context) -> Markup:
    """``<img k="v" ... />`` from the attributes: the suite's HTML-emitting handler."""
    parts = [Markup(' {}="{}"').format(key, value) for key, value in sc.attrs.items()]
    return Markup("<img") + Markup("").join(parts) + Markup(" />")


def render_own_content(sc: Shortcode, ctx: Context) -> Markup:
    """Stand-in for WordPress core's ``[caption]``: only its registration matters to the cases."""
    return sc.render_content() if sc.content is not None else Markup("")


WORDPRESS_HANDLERS: dict[str, Handler] = {
    "footag": footag,
    "bartag": bartag,
    "baztag": baztag,
    "dumptag": dumptag,
    "hyphen": _returns("_shortcode_hyphen"),
    "hyphen-foo": _returns("_shortcode_hyphen_foo"),
    "hyphen-foo-bar": _returns("_shortcode_hyphen_foo_bar"),
    "url": _returns("http://www.wordpress.org/"),
    "img": img,
    # Core shortcodes the suite relies on being registered. A gallery with no attachments
    # renders nothing in WordPress, which is all the ported cases need of it.
    "gallery": _returns(""),
    "caption": render_own_content,
}


def register_wordpress(env: Environment) -> Recorder:
    """Register the WordPress suite's handlers on ``env``; return the ``test-shortcode-tag`` log."""
    recorder = Recorder()
    env.add_shortcode("test-shortcode-tag", recorder.handler)
    for name, handler in WORDPRESS_HANDLERS.items():
        env.add_shortcode(name, handler)
    return recorder


# ---- beyond WordPress: handlers the improvement cases need -------------------------------------


def gate(sc: Shortcode, ctx: Context) -> Markup:
    """An enclosing conditional: shows its content to logged-in visitors only."""
    if ctx.contact is None or sc.content is None:
        return Markup("")
    return sc.render_content()


def wrap(sc: Shortcode, ctx: Context) -> Markup:
    """``<div>`` around the rendered content: shows where each pair's content begins and ends."""
    body = sc.render_content() if sc.content is not None else Markup("")
    return Markup("<div>") + body + Markup("</div>")


class HandlerFailed(RuntimeError):
    """What ``boom`` raises, so tests can tell it from an engine error."""


def boom(sc: Shortcode, ctx: Context) -> str:
    """Always raises, with HTML in the message to prove the inline notice escapes it."""
    raise HandlerFailed("<b>boom</b>")


def register_extras(env: Environment) -> None:
    """Register ``gate`` (enclosing=True), ``wrap``, ``shout``, ``bold`` and ``boom``."""
    env.add_shortcode("gate", gate, enclosing=True)
    env.add_shortcode("wrap", wrap)
    env.add_shortcode("shout", _returns('<b>"[footag]" & co</b>'))
    env.add_shortcode("bold", lambda sc, ctx: Markup("<b>bold</b>"))
    env.add_shortcode("boom", boom)


# ---- running a fixture case --------------------------------------------------------------------

VISITORS: dict[str, Context] = {
    "anonymous": Context(),
    "ann": Context(
        contact=Contact(
            id=7,
            email="ann@example.com",
            tags=[Tag(7, "Gold")],
            fields={"FirstName": "Ann", "_Credits": 60},
        ),
        request=RequestInfo(path="/members"),
        site=SiteInfo(url="https://example.com"),
    ),
    "mallory": Context(
        contact=Contact(
            id=9, email="m@example.com", fields={"FirstName": "[boom]<script>x</script>"}
        ),
    ),
}
"""The visitors a case can be rendered for: ``render as ann: ...``."""


def make_env(strict: bool = False) -> tuple[Environment, Recorder]:
    """A fresh environment with the WordPress suite's handlers and the extras registered."""
    env = Environment(builtins=False, strict=strict)
    recorder = register_wordpress(env)
    register_extras(env)
    return env, recorder


def run_case(case: Case) -> tuple[object, object]:
    """Run one fixture case; return (actual, expected) for the test to compare.

    Modes: render, record, strip, has (see tests/fixtures/wordpress.txt). The comparison is left
    to the test module so that pytest's assertion rewriting shows the difference.
    """
    env, recorder = make_env()
    words = case.mode.split()
    kind, rest = words[0], words[1:]
    ctx = VISITORS[rest[1]] if rest[:1] == ["as"] else VISITORS["anonymous"]
    if kind == "render":
        out = env.render(case.input, ctx)
        assert isinstance(out, Markup)
        return str(out), case.expected
    if kind == "record":
        out = env.render(case.input, ctx)
        return _recorded(recorder, str(out)), json.loads(case.expected)
    if kind == "strip":
        names = rest[1].split(",") if rest[:1] == ["only"] else None
        return env.strip(case.input, names), case.expected
    if kind == "has":
        assert case.expected in ("true", "false")
        return env.has_shortcode(case.input, rest[0]), case.expected == "true"
    raise ValueError(f"{case.where}: unknown mode {case.mode!r}")


def _recorded(recorder: Recorder, output: str) -> dict[str, object]:
    """The one test-shortcode-tag run in the fixtures' JSON shape; every run if not just one."""
    if [c.name for c in recorder.calls] != ["test-shortcode-tag"]:
        return {"calls": [vars(c) for c in recorder.calls], "output": output}
    call = recorder.calls[0]
    attrs = [list(pair) for pair in call.attrs]
    return {"attrs": attrs, "content": call.content, "output": output}
