"""MkDocs hook: add the generated reference pages (``shortcodes.docsite``) to every build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

from shortcodes.docsite import pages


def on_files(files: Files, config: Any) -> Files:
    """Add each generated page, written from the code of this checkout."""
    root = Path(config.config_file_path).resolve().parent
    for path, text in pages(root).items():
        files.append(File.generated(config, path, content=text))
    return files
