"""The table model as a GitHub-flavoured markdown table (findings), notes and what is missing after it."""
from __future__ import annotations

from . import formats
from .table import Column, Lacking, Mark, Row, Table


def cell(row: Row, column: Column) -> str:
    found = row.cell(column.key)
    shown = formats.text(found.value, found.kind or column.kind, column.digits)
    if column.kind == "command" and found.value:
        shown = f"`{shown}`"
    if found.tone == "strong":
        shown = f"**{shown}**"
    elif found.tone == "predicted":
        shown = f"_{shown}_"
    marks = [m.words if isinstance(m, Mark) else m for m in found.marks]
    return " ".join([shown, *marks]).replace("|", "\\|")


def lacking(found: list[Lacking]) -> list[str]:
    """A list item per thing missing: what, what it needs, and the command that adds it."""
    return [f"- `{lack.subject}` {lack.needs}: " + (f"`{lack.command}`" if lack.command else lack.reason)
            for lack in found]


def render(table: Table, notes: bool = True) -> list[str]:
    """Markdown lines: the table (a header, a rule, a line per row), then its notes and lacking list."""
    shown = table.shown
    lines = ["| " + " | ".join(c.title.replace("\n", " ") for c in shown) + " |",
             "|" + "---|" * len(shown)]
    lines += ["| " + " | ".join(cell(row, c) for c in shown) + " |" for row in table.rows]
    if notes:
        for note in table.notes:  # each a paragraph of its own; a leading "*" would start a list
            lines += ["", "\\" + note if note.startswith("*") else note]
    if table.lacking:
        lines += ["", table.lacking_intro, ""] if table.lacking_intro else [""]
        lines += lacking(table.lacking)
    if notes and table.footer:
        lines += ["", *table.footer]
    return lines
