"""The page editor: ``/admin/pages`` lists, creates and edits page files in the browser.

Admins only (:func:`~shortcodes.host.auth.admin_required`), CSRF on every POST (CSRFProtect;
the live preview sends the token in ``X-CSRFToken``). Routes:

* ``GET /admin/pages``: every page and pending draft, and a form to start a new page;
* ``GET /admin/pages/edit/<file>``: the editor (the draft if there is one, else the page);
* ``POST /admin/pages/preview``: JSON ``{file, text, as}`` → the problems of the unsaved text
  (:func:`~shortcodes.host.sitecheck.check_page`, the lines ``check`` prints) and its body
  rendered server-side as that contact or anonymous, with inert buttons;
* ``POST /admin/pages/save``: ``action=draft`` writes ``<file>.draft`` whatever its problems;
  ``action=publish`` writes the page itself only when it has no error, and drops the draft.

Files are named relative to the pages folder, segment by segment as page URLs are
(:data:`~shortcodes.host.pages.EXTENSIONS` only), and never leave it. Writes are atomic: a
temporary file in the same folder, flushed, then renamed over the target.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from shortcodes.errors import PageError
from shortcodes.host.auth import admin_required
from shortcodes.host.pages import EXTENSIONS
from shortcodes.host.preview import viewer
from shortcodes.host.render import InertSigner, host_template, in_layout, make_context
from shortcodes.host.sitecheck import Finding, SiteFacts, check_page, page_files, site_schema
from shortcodes.host.state import host, signed_in
from shortcodes.host.views import refresh_theme

bp = Blueprint("editor", __name__)

DRAFT = ".draft"
NEW_PAGE = "---\ntitle: New page\n---\n# New page\n\nWrite here.\n"


def page_file(name: str) -> Path:
    """The file ``name`` (relative to the pages folder) stands for; 400 if it is not a page
    file name or would leave the folder."""
    root = host().pages.root
    parts = name.strip().split("/")
    valid = parts and all(p and p[0].isalnum() and _plain(p) for p in parts)
    if not valid or Path(parts[-1]).suffix not in EXTENSIONS:
        abort(400, f"{name!r} is not a page file name: use letters, digits, - _ . and / "
                   f"segments ending in {' or '.join(EXTENSIONS)}")  # fmt: skip
    path = (root / Path(*parts)).resolve()
    if not path.is_relative_to(root) or path == root:
        abort(400, "a page file must be inside the pages folder")
    return path


def _plain(segment: str) -> bool:
    return all(c.isalnum() or c in "-_." for c in segment) and ".." not in segment


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename: readers see the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".editing-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def facts() -> SiteFacts:
    """What the site declares, for the checks and the completion lists (with the theme's
    template shortcodes as they are now: a new template is known without a restart)."""
    refresh_theme()
    state = host()
    return SiteFacts.of(state.site, state.theme, state.pages)


def problems(name: str, text: str) -> list[Finding]:
    """The problems of the unsaved ``text`` of page ``name`` (as ``check`` reports them)."""
    return check_page(host().env, facts(), text, name)


def _relative(path: Path) -> str:
    return path.relative_to(host().pages.root).as_posix()


def _url(path: Path) -> str:
    rel = path.relative_to(host().pages.root).with_suffix("")
    url = "/" + rel.as_posix()
    return url.removesuffix("index").rstrip("/") or "/" if rel.name == "index" else url


# -- views -----------------------------------------------------------------------------------------


@bp.get("/admin/pages")
@admin_required
def index() -> ResponseReturnValue:
    """Every page file and pending draft, with links to edit them."""
    root = host().pages.root
    rows = []
    for path in page_files(root):
        draft = path.with_name(path.name + DRAFT)
        rows.append({"file": _relative(path), "url": _url(path), "draft": draft.is_file()})
    live = {row["file"] for row in rows}
    for draft in sorted(root.rglob("*" + DRAFT)):
        name = _relative(draft)[: -len(DRAFT)]
        if name not in live:
            rows.append({"file": name, "url": None, "draft": True})
    body = host_template("editor_index", rows=rows)
    return in_layout("bare", "Pages", body, signed_in(), page=None)


@bp.get("/admin/pages/new")
@admin_required
def new() -> ResponseReturnValue:
    """The form on the index names a file: open its editor (400 for a bad name)."""
    path = page_file(request.args.get("file", ""))
    return redirect(url_for("editor.edit", name=_relative(path)), 303)


@bp.get("/admin/pages/edit/<path:name>")
@admin_required
def edit(name: str) -> ResponseReturnValue:
    """The editor for page ``name``: its draft if there is one, else the page, else a new one."""
    path = page_file(name)
    draft = path.with_name(path.name + DRAFT)
    source = draft if draft.is_file() else path
    text = source.read_text(encoding="utf-8") if source.is_file() else NEW_PAGE
    return _editor(path, text, draft.is_file())


def _editor(path: Path, text: str, has_draft: bool, status: int = 200) -> ResponseReturnValue:
    rel = _relative(path)
    state = host()
    body = host_template(
        "editor",
        file=rel,
        text=text,
        has_draft=has_draft,
        exists=path.is_file(),
        url=_url(path),
        problems=problems(rel, text),
        schema=site_schema(state.env, facts()),
        script=state.theme.asset("editor.js"),
    )
    html = in_layout("bare", f"Edit {rel}", body, signed_in(), page=None)
    return html, status, {"Cache-Control": "private, no-store"}


@bp.post("/admin/pages/preview")
@admin_required
def preview() -> ResponseReturnValue:
    """The problems and the rendered body of unsaved text (JSON in, JSON out)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        abort(400, 'send JSON {"file": ..., "text": ..., "as": ...}')
    path = page_file(str(data.get("file", "")))
    text = _lines(data["text"])
    found = problems(_relative(path), text)
    who = viewer(str(data.get("as") or "anonymous"))
    return {
        "problems": [f.as_dict() for f in found],
        "html": str(_render(path, text, who)),
    }


def _render(path: Path, text: str, who: Any) -> Markup:
    """The body of ``text`` as ``who`` would see it, with notices and inert buttons."""
    state = host()
    try:
        _, _, template = state.pages.compile_text(text, _relative(path), path.suffix)
    except PageError as error:
        return Markup('<p class="shortcode-error">{}</p>').format(str(error))
    return template.render(make_context(who, show_errors=True, signer=InertSigner()))


@bp.post("/admin/pages/save")
@admin_required
def save() -> ResponseReturnValue:
    """Save a draft (always) or publish (only without errors); 303 back to the editor."""
    path = page_file(request.form.get("file", ""))
    text = _lines(request.form.get("text", ""))
    action = request.form.get("action", "")
    if action not in ("draft", "publish"):
        abort(400, "action is draft or publish")
    draft = path.with_name(path.name + DRAFT)
    if action == "draft":
        atomic_write(draft, text)
        flash(f"Draft of {_relative(path)} saved; the live page is unchanged.", "success")
        return redirect(url_for("editor.edit", name=_relative(path)), 303)
    errors = [f for f in problems(_relative(path), text) if f.severity == "error"]
    if errors:
        flash(f"Not published: {len(errors)} error(s). Fix them, or save a draft.", "error")
        return _editor(path, text, draft.is_file(), 422)
    atomic_write(path, text)
    draft.unlink(missing_ok=True)
    flash(f"Published {_relative(path)}.", "success")
    return redirect(url_for("editor.edit", name=_relative(path)), 303)


def _lines(text: str) -> str:
    """Browsers send a textarea's lines with CRLF; pages are stored with LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")
