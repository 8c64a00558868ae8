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
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from shortcodes.environment import Environment
from shortcodes.errors import LineIndex, PageError
from shortcodes.parser import scan
from shortcodes.runtime import Template
from shortcodes.typos import with_typos

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
    #: The environment's registry generation it was compiled with (a theme reload bumps it).
    generation: int = 0


@dataclass(frozen=True, slots=True)
class FrontValue:
    """One front matter value and where it starts in the file (1-based line and column)."""

    value: str
    line: int
    column: int


#: The values ``login`` takes, and whether each asks for a login.
LOGIN_VALUES = {"yes": True, "required": True, "true": True, "no": False, "false": False}


def split_front_matter(text: str, name: str) -> tuple[FrontMatter, str, int]:
    """The front matter, the body, and how many lines the front matter took (for lint lines)."""
    values, body, taken = read_front_matter(text, name)
    return front_matter(values, name), body, taken


def read_front_matter(text: str, name: str) -> tuple[dict[str, FrontValue], str, int]:
    """The raw front matter values with their positions, the body, and the lines taken.

    Raises :class:`PageError` (with line and column) for a line that is not ``key: value`` with
    a known key, or front matter that is never closed.
    """
    if not text.startswith("---"):
        return {}, text, 0
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text, 0
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            values = _read_values(lines[1:end], name)
            return values, "\n".join(lines[end + 1 :]), end + 1
    raise PageError(f"{name}:1:1: front matter opened with '---' on line 1 is never closed", 1, 1)


def _read_values(lines: list[str], name: str) -> dict[str, FrontValue]:
    values: dict[str, FrontValue] = {}
    for number, line in enumerate(lines, start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        spelled, sep, value = line.partition(":")
        column = len(line) - len(line.lstrip()) + 1
        key = spelled.strip().lower()
        if not sep or key not in FRONT_KEYS:
            raise PageError(
                f"{name}:{number}:{column}: front matter lines are 'key: value' with a key among "
                f"{', '.join(FRONT_KEYS)}; got {line.strip()!r}",
                number,
                column,
            )
        at = len(spelled) + 1 + len(value) - len(value.lstrip()) + 1
        value = value.strip()
        # An offer is shortcode text: its quotes belong to the attributes.
        value = value if key == "offer" else value.strip('"').strip("'")
        values[key] = FrontValue(value, number, at)
    return values


def front_matter(values: dict[str, FrontValue], name: str) -> FrontMatter:
    """The page settings the values give; :class:`PageError` at the value that is wrong."""
    text = {key: item.value for key, item in values.items()}
    login = text.get("login", "no").lower()
    if login not in LOGIN_VALUES:
        item = values["login"]
        raise PageError(
            f"{name}:{item.line}:{item.column}: front matter 'login' is yes or no, got {login!r}",
            item.line,
            item.column,
        )
    return FrontMatter(
        title=text.get("title", ""),
        layout=text.get("layout", "page") or "page",
        access=_items(text.get("access", "")),
        login=LOGIN_VALUES[login],
        data=_items(text.get("data", "")),
        description=text.get("description", ""),
        offer=text.get("offer", ""),
    )


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


_ELSE_MARKER = re.compile(r"\[else(?:_[A-Za-z0-9_-]+)?\]", re.IGNORECASE)
_HELD = re.compile("\ue000(\\d+)\ue001")
_HELD_PARAGRAPH = re.compile("<p>((?:\ue000\\d+\ue001[ \t\n]*)+)</p>\n?")


class MarkdownConverter:
    """Markdown to HTML with shortcode tags kept verbatim (and unwrapped when alone on a line).

    The tags are found by the engine's own scanner (:func:`shortcodes.parser.scan`, linear on
    any input), so Markdown protects exactly the tags the engine will run, typo pairs included.
    """

    _HOLD = "\ue000{}\ue001"

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.md = MarkdownIt("commonmark", {"html": True}).enable("table")

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Where the shortcode tags and else markers of ``text`` are, in order."""
        spans = [(tag[0], tag[1]) for tag in scan(text, with_typos(self.env.shortcodes, text))]
        spans.extend(m.span() for m in _ELSE_MARKER.finditer(text))
        spans.sort()
        return spans

    def convert(self, text: str) -> str:
        """Render ``text`` as Markdown; shortcode tags come out exactly as written."""
        return self.convert_mapped(text)[0]

    def convert_mapped(self, text: str) -> tuple[str, list[tuple[int, int]]]:
        """:meth:`convert`, and (offset in the HTML, offset in ``text``) of each tag, in order."""
        held: list[tuple[int, str]] = []
        pieces: list[str] = []
        pos = 0
        for start, end in self._spans(text):
            if start < pos:
                continue  # an else marker inside a tag's attribute text
            pieces.append(text[pos:start])
            held.append((start, text[start:end]))
            pieces.append(self._HOLD.format(len(held) - 1))
            pos = end
        pieces.append(text[pos:])
        html = self.md.render("".join(pieces))
        # A tag alone in a paragraph would leave <p>[gate]</p> around branches: unwrap it.
        html = _HELD_PARAGRAPH.sub(r"\1", html)
        out: list[str] = []
        places: list[tuple[int, int]] = []
        size = last = 0
        for m in _HELD.finditer(html):
            out.append(html[last : m.start()])
            size += m.start() - last
            source_at, tag = held[int(m.group(1))]
            places.append((size, source_at))
            out.append(tag)
            size += len(tag)
            last = m.end()
        out.append(html[last:])
        return "".join(out), places


def _shifted(
    lines: LineIndex, taken: int, places: list[tuple[int, int]] | None
) -> Callable[[int], tuple[int, int]]:
    """Offset in the compiled source → (line, column) in the file: through the Markdown tag map
    (``places``: compiled offset, body offset) when there is one, then past the front matter."""
    starts = [at for at, _ in places or ()]

    def where(offset: int) -> tuple[int, int]:
        if places:
            i = bisect_right(starts, offset) - 1
            if i >= 0:
                offset = places[i][1] + offset - places[i][0]
        line, column = lines.line_col(offset)
        return line + taken, column

    return where


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
        if (
            page is not None
            and page.generation == self.env.generation
            and (page.mtime_ns, page.size) == (stat.st_mtime_ns, stat.st_size)
        ):
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
        generation = self.env.generation
        meta, source, template = self.compile_text(text, name, path.suffix)
        offer = self.env.compile(meta.offer, f"{name} (offer)") if meta.offer else None
        return Page(path, url, meta, source, template, mtime_ns, size, offer, generation)

    def compile_text(self, text: str, name: str, suffix: str) -> tuple[FrontMatter, str, Template]:
        """The front matter, the HTML source and the template of a page file's ``text``.

        Inline notices name lines of the file (front matter counted, Markdown unconverted), the
        lines ``check``, the editor and the language server report.
        """
        meta, body, taken = split_front_matter(text, name)
        lines = LineIndex(body)
        if suffix != ".md":
            return meta, body, self.env.compile(body, name, _shifted(lines, taken, None))
        source, places = self.markdown.convert_mapped(body)
        return meta, source, self.env.compile(source, name, _shifted(lines, taken, places))

    def all_urls(self) -> list[str]:
        """Every page URL, sorted (for the preview index)."""
        urls = []
        for file in sorted(self.root.rglob("*")):
            if file.suffix in EXTENSIONS and file.is_file():
                rel = file.relative_to(self.root).with_suffix("")
                url = "/" + "/".join(rel.parts)
                urls.append(url[: -len("index")].rstrip("/") or "/" if rel.name == "index" else url)
        return sorted(set(urls))
