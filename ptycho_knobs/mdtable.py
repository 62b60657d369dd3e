"""Markdown table rows, split the one way both the spec reader (audit) and the spec splicer
(generate) must agree on. Standard library only: both sides sit on start-up paths."""

from __future__ import annotations

import re

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def table_cells(row: str) -> list[str]:
    """The stripped cells of a `| a | b |` row: outer pipes optional, `\\|` kept inside a cell."""
    body = row.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip() for cell in _UNESCAPED_PIPE.split(body)]
