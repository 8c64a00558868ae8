"""The language server (``python -m shortcodes lsp``) driven by a real LSP client over stdio.

pytest-lsp starts the server as a subprocess and speaks JSON-RPC to it like an editor does. The
server loads the site of ``tests/fixtures/checksite`` (the golden site of ``check``), so its
diagnostics are checked against the same lines ``check`` prints.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from tests.support.paths import FIXTURES, ROOT

SITE = FIXTURES / "checksite"
PAGE = SITE / "pages" / "draft.md"
URI = PAGE.as_uri()


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[
            sys.executable, "-m", "shortcodes", "lsp",
            "--site", str(SITE), "--themes", str(ROOT / "themes"),
        ],
    ),
)  # fmt: skip
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    """An initialized LSP session with the server."""
    await lsp_client.initialize_session(
        types.InitializeParams(capabilities=client_capabilities("visual-studio-code"))
    )
    yield
    await lsp_client.shutdown_session()


def _open(client: LanguageClient, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=URI, language_id="markdown", version=1, text=text
            )
        )
    )


async def _diagnostics(client: LanguageClient) -> list[tuple[int, int, str, str]]:
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    return [
        (d.range.start.line + 1, d.range.start.character + 1,
         "error" if d.severity == types.DiagnosticSeverity.Error else "warning", d.message)
        for d in client.diagnostics[URI]
    ]  # fmt: skip


@pytest.mark.asyncio
async def test_diagnostics_on_open_and_change_are_checks_findings(client: LanguageClient) -> None:
    """Open: the typo at line 5 (front matter counted); change: the fix clears it."""
    _open(client, "---\ntitle: D\n---\n\n[memb_has_any_tagg tagid=Gold]x[/memb_has_any_tagg]\n")
    assert await _diagnostics(client) == [
        (5, 1, "error", "unknown shortcode [memb_has_any_tagg] used as a pair; did you mean "
                        "[memb_has_any_tag]? Its content is hidden from visitors"),
    ]  # fmt: skip
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(
                text='---\ntitle: D\n---\n[memb_actionset_button action_id="buy-z"]\n'
            )],
        )
    )  # fmt: skip
    assert await _diagnostics(client) == [
        (4, 24, "error", "[memb_actionset_button] action_id: no actionset 'buy-z' in site.toml")
    ]


async def _complete(client: LanguageClient, line: str) -> list[str]:
    _open(client, line + "\n")
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    result = await client.text_document_completion_async(
        types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=0, character=len(line)),
        )
    )
    assert isinstance(result, types.CompletionList)
    return sorted(item.label for item in result.items)


@pytest.mark.asyncio
async def test_completion_of_names_attributes_and_site_values(client: LanguageClient) -> None:
    """Names after "[", declared attributes inside a tag, declared values inside quotes."""
    assert await _complete(client, "[memb_has_a") == [
        "memb_has_all_tags", *[f"memb_has_all_tags{i}" for i in range(1, 10)],
        "memb_has_any_tag", *[f"memb_has_any_tag{i}" for i in range(1, 10)],
    ]  # fmt: skip
    assert await _complete(client, "[checkout_button b") == ["button_text"]
    assert await _complete(client, '[memb_has_any_tag tagid="') == ["Gold", "Owns Course B"]
    assert await _complete(client, '[checkout_button product="cr') == ["credits-50"]
    assert await _complete(client, '[memb_actionset_button action_id="') == ["buy-b"]
    assert await _complete(client, '[credit_balance field="') == ["_Credits"]


@pytest.mark.asyncio
async def test_hover_documents_a_shortcode_from_the_registry(client: LanguageClient) -> None:
    _open(client, '[checkout_button product="credits-50"]\n')
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=0, character=20),
        )
    )
    assert hover is not None
    assert isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.value.startswith("**[checkout_button]**")
    assert "- `product`: str (required) — a product id from site.toml" in hover.contents.value


@pytest.mark.asyncio
async def test_definition_of_a_theme_shortcode_is_its_template(client: LanguageClient) -> None:
    _open(client, '[creditbutton cost="5"]\n')
    await client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    found = await client.text_document_definition_async(
        types.DefinitionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=0, character=3),
        )
    )
    template = ROOT / "themes" / "default" / "shortcodes" / "creditbutton.html"
    assert isinstance(found, types.Location)
    assert Path(found.uri.removeprefix("file://")) == template
