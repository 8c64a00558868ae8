"""The language server: ``python -m shortcodes lsp`` speaks LSP over stdio (``pygls``).

It loads a site once, as ``check`` does (site.toml, the host's engine with the theme's
shortcodes), and answers an editor about page files:

* diagnostics on open and on every change: exactly :func:`~.sitecheck.check_page`, so the
  lines and messages are the ones ``check`` prints (counted from the top of the file);
* completion of shortcode names after ``[``, of declared attributes inside a tag, and of the
  values the site declares inside an attribute's quotes (tags, actionsets, products, fields);
* hover: a shortcode's description, attributes and example from the registry;
* go to definition: a theme shortcode's template file.

Completion, hover and definition read the current line only (tags do not span lines in the
common case), so they cost the same on any page.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from shortcodes.environment import Environment
from shortcodes.errors import ConfigError, ThemeError
from shortcodes.host.sitecheck import Finding, SiteFacts, check_page, site_environment, site_schema
from shortcodes.membership.config import load_config

log = logging.getLogger("shortcodes.lsp")

_NAME_PREFIX = re.compile(r"\[/?([^\s\[\]/=<>&]*)$")
_ATTR_VALUE = re.compile(r"([A-Za-z0-9_-]+)\s*=\s*[\"']([^\"']*)$")
_ATTR_START = re.compile(r"\s([A-Za-z0-9_-]*)$")
_WORD = re.compile(r"[^\s\[\]/=<>&\"']+")


class ShortcodesServer(LanguageServer):
    """A language server holding one site's engine, facts and registry schema."""

    def __init__(self, env: Environment, facts: SiteFacts, root: Path) -> None:
        super().__init__("shortcodes", version("shortcodes-membership"))
        self.env = env
        self.facts = facts
        self.root = root
        self.schema = site_schema(env, facts)

    def name_of(self, uri: str) -> str:
        """The file name used in messages: the path relative to the site when it is inside."""
        path = Path(unquote(urlparse(uri).path))
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return str(path)

    def diagnose(self, uri: str) -> None:
        """Publish ``check``'s findings for the document at ``uri``."""
        document = self.workspace.get_text_document(uri)
        found = check_page(self.env, self.facts, document.source, self.name_of(uri))
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[_diagnostic(f) for f in found])
        )


def _diagnostic(finding: Finding) -> types.Diagnostic:
    start = types.Position(line=max(0, finding.line - 1), character=max(0, finding.column - 1))
    end = types.Position(line=start.line, character=start.character + 1)
    severity = (
        types.DiagnosticSeverity.Error
        if finding.severity == "error"
        else types.DiagnosticSeverity.Warning
    )
    return types.Diagnostic(
        range=types.Range(start=start, end=end),
        message=finding.message,
        severity=severity,
        source="shortcodes",
    )


def build_server(site: Path, themes: Path) -> ShortcodesServer:
    """The server for the site folder ``site``; a site that does not load still gives the
    builtin shortcodes (its configuration error is logged to stderr)."""
    try:
        config = load_config(site)
        env, theme = site_environment(config.host, themes)
        from shortcodes.host.pages import PageStore

        facts = SiteFacts.of(config.host, theme, PageStore(config.host.pages_dir, env))
        root = config.host.pages_dir.parent
    except (ConfigError, ThemeError) as error:
        log.error("shortcodes lsp: %s; only builtin shortcodes are known", error)
        env, facts, root = Environment(), SiteFacts(), site.resolve()
    server = ShortcodesServer(env, facts, root)
    _register(server)
    return server


def _register(server: ShortcodesServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: ShortcodesServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.diagnose(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: ShortcodesServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.diagnose(params.text_document.uri)

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=["[", " ", '"', "'", "/"]),
    )
    def completion(ls: ShortcodesServer, params: types.CompletionParams) -> types.CompletionList:
        before = _line_before(ls, params.text_document.uri, params.position)
        return types.CompletionList(is_incomplete=False, items=complete(ls.schema, before))

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: ShortcodesServer, params: types.HoverParams) -> types.Hover | None:
        name = _name_at(ls, params.text_document.uri, params.position)
        if name is None:
            return None
        return types.Hover(
            contents=types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=describe(ls.schema, name)
            )
        )

    @server.feature(types.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: ShortcodesServer, params: types.DefinitionParams) -> types.Location | None:
        name = _name_at(ls, params.text_document.uri, params.position)
        source = ls.schema["shortcodes"][name]["source"] if name is not None else None
        if not source:
            return None
        start = types.Position(line=0, character=0)
        return types.Location(uri=Path(source).as_uri(), range=types.Range(start=start, end=start))


def _line_before(ls: ShortcodesServer, uri: str, position: types.Position) -> str:
    lines = ls.workspace.get_text_document(uri).lines
    line = lines[position.line] if position.line < len(lines) else ""
    return line[: position.character]


def _name_at(ls: ShortcodesServer, uri: str, position: types.Position) -> str | None:
    """The registered shortcode whose tag the position is in (its name or attributes)."""
    lines = ls.workspace.get_text_document(uri).lines
    line = lines[position.line] if position.line < len(lines) else ""
    open_at = line.rfind("[", 0, position.character + 1)
    if open_at < 0:
        return None
    m = _WORD.match(line, open_at + 1 + (line.startswith("[/", open_at)))
    name = m.group() if m else None
    return name if name in ls.schema["shortcodes"] else None


def complete(schema: dict[str, Any], before: str) -> list[types.CompletionItem]:
    """What may come next after ``before`` (the line up to the cursor)."""
    open_at = before.rfind("[")
    if open_at < 0 or "]" in before[open_at:]:
        return []
    tag = before[open_at:]
    shortcodes = schema["shortcodes"]
    m = _NAME_PREFIX.match(tag)
    if m is not None:
        return [
            types.CompletionItem(
                label=name,
                kind=types.CompletionItemKind.Function,
                detail=shortcodes[name]["description"].split("\n")[0][:80],
            )
            for name in shortcodes
            if name.startswith(m.group(1))
        ]
    name = _WORD.match(tag, 1)
    spec = shortcodes.get(name.group() if name else "")
    if spec is None:
        return []
    value = _ATTR_VALUE.search(tag)
    if value is not None:
        return [
            types.CompletionItem(label=v, kind=types.CompletionItemKind.Value)
            for v in spec["values"].get(value.group(1), [])
            if v.startswith(value.group(2))
        ]
    word = _ATTR_START.search(tag)
    if word is None or spec["attributes"] is None:
        return []
    return [
        types.CompletionItem(
            label=a["name"],
            kind=types.CompletionItemKind.Property,
            detail=f"{a['type']}{', required' if a['required'] else ''}",
            documentation=a["doc"],
            insert_text=f'{a["name"]}="',
        )
        for a in spec["attributes"]
        if a["name"].startswith(word.group(1))
    ]


def describe(schema: dict[str, Any], name: str) -> str:
    """Markdown documentation of shortcode ``name`` from the registry."""
    spec = schema["shortcodes"][name]
    lines = [f"**[{name}]**" + (" (enclosing)" if spec["enclosing"] else ""), ""]
    if spec["description"]:
        lines += [spec["description"], ""]
    for attr in spec["attributes"] or ():
        required = " (required)" if attr["required"] else ""
        lines.append(f"- `{attr['name']}`: {attr['type']}{required} — {attr['doc']}")
    if spec["example"]:
        lines += ["", f"Example: `{spec['example']}`"]
    return "\n".join(lines).strip()
