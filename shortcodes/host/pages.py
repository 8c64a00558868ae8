"""Host pages: find the file for a URL, read its front matter, compile once, recompile on change.

A page is ``<pages>/<path>.md`` or ``.html`` (``/`` is ``index``, ``/a/b`` may also be
``a/b/index``). It may open with front matter between ``---`` lines::

    ---
    title: Course B
    layout: page
    access: Owns Course B, All Access
    ---

``access`` lists tags, any one of which opens the page (implies ``login: required``);
``login: required`` asks only for a logged-in contact; ``data: account`` asks the host for the
contact's ledger history, ``data: tags`` for when each of the contact's tags expires.
``offer`` is shortcode text shown (with the title and description) to a logged-in contact who
cannot open the page, instead of the page: typically the page's ``[creditbutton]``, so they see
"unlock for N credits" or "buy more credits" rather than a dead end. Markdown is converted to HTML at compile time with the shortcode tags
protected, so markdown never mangles a tag and nothing is parsed per request but the shortcodes.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from shortcodes.environment import Environment
from shortcodes.errors import PageError
from shortcodes.runtime import Template

EXTENSIONS = (".md", ".html")
FRONT_KEYS = ("title", "layout", "access", "login", "data", "description", "offer")
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class FrontMatter:
    """A page's settings from its front matter."""

    title: str = ""
    layout: str = "page"
    access: tuple[str, ...] = ()
    login: bool = False
    data: tuple[str, ...] = ()
    description: str = ""
    #: Shortcode text shown to a logged-in contact without access (see the module docstring).
    offer: str = ""

    @property
    def needs_login(self) -> bool:
        """True when anonymous visitors are sent to the login page."""
        return self.login or bool(self.access)


@dataclass(frozen=True, slots=True)
class Page:
    """A compiled page: its file, front matter, HTML body source and compiled template."""

    path: Path
    url: str
    meta: FrontMatter
    source: str
    template: Template
    mtime_ns: int
    size: int
    #: The compiled ``offer`` of the front matter (None when it has none).
    offer: Template | None = None


def split_front_matter(text: str, name: str) -> tuple[FrontMatter, str, int]:
    """The front matter, the body, and how many lines the front matter took (for lint lines)."""
    if not text.startswith("---"):
        return FrontMatter(), text, 0
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return FrontMatter(), text, 0
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            meta = _parse_meta(lines[1:end], name)
            return meta, "\n".join(lines[end + 1 :]), end + 1
    raise PageError(f"{name}: front matter opened with '---' on line 1 is never closed")


def _parse_meta(lines: list[str], name: str) -> FrontMatter:
    values: dict[str, str] = {}
    for number, line in enumerate(lines, start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or key not in FRONT_KEYS:
            raise PageError(
                f"{name}:{number}: front matter lines are 'key: value' with a key among "
                f"{', '.join(FRONT_KEYS)}; got {line.strip()!r}"
            )
        value = value.strip()
        # An offer is shortcode text: its quotes belong to the attributes.
        values[key] = value if key == "offer" else value.strip('"').strip("'")
    login = values.get("login", "no").lower()
    if login not in ("yes", "no", "required", "true", "false"):
        raise PageError(f"{name}: front matter 'login' is yes or no, got {login!r}")
    return FrontMatter(
        title=values.get("title", ""),
        layout=values.get("layout", "page") or "page",
        access=_items(values.get("access", "")),
        login=login in ("yes", "required", "true"),
        data=_items(values.get("data", "")),
        description=values.get("description", ""),
        offer=values.get("offer", ""),
    )


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


class MarkdownConverter:
    """Markdown to HTML with shortcode tags kept verbatim (and unwrapped when alone on a line)."""

    _HOLD = "\ue000{}\ue001"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.md = MarkdownIt("commonmark", {"html": True}).enable("table")

    def _tag_pattern(self) -> re.Pattern[str]:
        names = sorted(self.env.shortcodes, key=len, reverse=True)
        alternatives = "|".join(re.escape(n) for n in names) or "(?!)"
        # A tag is [name ...] or [/name] or an else marker; quoted values may hold ']'.
        return re.compile(
            r"\[/?(?:" + alternatives + r"|else(?:_[A-Za-z0-9_-]+)?)"
            r"(?=[\s\]/])(?:\"[^\"]*\"|'[^']*'|[^\]\"'])*\]",
            re.IGNORECASE,
        )

    def convert(self, text: str) -> str:
        """Render ``text`` as Markdown; shortcode tags come out exactly as written."""
        held: list[str] = []

        def hold(match: re.Match[str]) -> str:
            held.append(match.group(0))
            return self._HOLD.format(len(held) - 1)

        html = self.md.render(self._tag_pattern().sub(hold, text))
        # A tag alone in a paragraph would leave <p>[gate]</p> around branches: unwrap it.
        html = re.sub(r"<p>((?:\ue000\d+\ue001\s*)+)</p>\n?", r"\1", html)
        return re.sub(r"\ue000(\d+)\ue001", lambda m: held[int(m.group(1))], html)


class PageStore:
    """Pages of one site folder, compiled on first use and recompiled when the file changes."""

    def __init__(self, root: Path, env: Environment) -> None:
        self.root = root.resolve()
        self.env = env
        self.markdown = MarkdownConverter(env)
        self._pages: dict[Path, Page] = {}
        self._lock = threading.Lock()

    def find(self, url: str) -> Path | None:
        """The file serving ``url``, or None. Never leaves the pages folder."""
        parts = [p for p in url.strip("/").split("/") if p]
        if not all(_SEGMENT.match(p) for p in parts):
            return None
        stems = [Path(*parts)] if parts else []
        stems.append(Path(*parts, "index"))
        for stem in stems:
            for ext in EXTENSIONS:
                candidate = self.root / stem.with_name(stem.name + ext)
                if candidate.is_file():
                    return candidate
        return None

    def get(self, path: Path, url: str) -> Page:
        """The compiled page for ``path``, recompiled if its mtime or size changed."""
        stat = path.stat()
        page = self._pages.get(path)
        if page is not None and page.mtime_ns == stat.st_mtime_ns and page.size == stat.st_size:
            return page
        page = self.compile(path, url, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            self._pages[path] = page
        return page

    def compile(self, path: Path, url: str, mtime_ns: int, size: int) -> Page:
        """Read, convert and compile one page file."""
        name = str(path.relative_to(self.root))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PageError(f"{name}: cannot read the page: {exc}") from exc
        meta, body, _ = split_front_matter(text, name)
        source = self.markdown.convert(body) if path.suffix == ".md" else body
        offer = self.env.compile(meta.offer, f"{name} (offer)") if meta.offer else None
        template = self.env.compile(source, name)
        return Page(path, url, meta, source, template, mtime_ns, size, offer)

    def all_urls(self) -> list[str]:
        """Every page URL, sorted (for the preview index)."""
        urls = []
        for file in sorted(self.root.rglob("*")):
            if file.suffix in EXTENSIONS and file.is_file():
                rel = file.relative_to(self.root).with_suffix("")
                url = "/" + "/".join(rel.parts)
                urls.append(url[: -len("index")].rstrip("/") or "/" if rel.name == "index" else url)
        return sorted(set(urls))
