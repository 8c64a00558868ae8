"""Test support: reads the readable spec-case files in ``tests/fixtures/*.txt``.

The format follows markdown-it-py's fixture files. Outside a case, blank lines and lines starting
with ``#`` are comments. A case is a title line ``mode: description``, a line holding only ``.``,
the input, ``.``, the expected result, ``.``. Input and expected are the lines between the dots
joined by ``\\n`` (no final newline unless an empty line precedes the closing dot); both are taken
byte for byte. What ``mode`` means is up to the test module that reads the file.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests.support.paths import FIXTURES


@dataclass(frozen=True)
class Case:
    """One fixture case: how to run it (mode), what it proves (title), input and expectation."""

    mode: str
    title: str
    input: str
    expected: str
    where: str

    @property
    def id(self) -> str:
        """The pytest id: ``file:line title``."""
        return f"{self.where} {self.title}"


def load_cases(name: str) -> list[Case]:
    """Every case of ``tests/fixtures/<name>``, in file order."""
    lines = (FIXTURES / name).read_text("utf-8").split("\n")
    cases, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip() or line.startswith("#"):
            i += 1
            continue
        mode, sep, title = line.partition(":")
        if not sep or lines[i + 1] != ".":
            raise ValueError(f"{name}:{i + 1}: expected 'mode: title' then '.', got {line!r}")
        parts, j = [], i + 2
        for _ in range(2):
            end = lines.index(".", j)  # ValueError on an unterminated case is loud enough
            parts.append("\n".join(lines[j:end]))
            j = end + 1
        cases.append(Case(mode.strip(), title.strip(), parts[0], parts[1], f"{name}:{i + 1}"))
        i = j
    return cases
