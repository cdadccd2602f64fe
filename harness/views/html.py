"""The table model as HTML, for the dashboard's one table macro (web/templates/macros.html). Every stored text is
escaped here; links become URLs through the caller's `url_for`, so this module knows no web framework."""
from __future__ import annotations

from markupsafe import Markup, escape

from . import formats
from .table import Column, Row, Table


def heading(column: Column, url_for) -> Markup:
    shown = Markup("<br>").join(escape(line) for line in column.title.split("\n"))
    if column.link:
        shown = Markup('<a href="{}">{}</a>').format(url_for(column.link.endpoint, **dict(column.link.params)), shown)
    return shown


def _mark(mark) -> Markup:
    mark = str(mark)
    if mark.isalpha():
        return Markup('<span class="flag">{}</span>').format(mark)
    return Markup('<span class="mark">{}</span>').format(mark)


def cell(row: Row, column: Column, url_for) -> Markup:
    """One <td> (a <th> for the row's label), its number formatted by views.formats."""
    found = row.cell(column.key)
    shown = escape(formats.text(found.value, found.kind or column.kind, column.digits))
    if column.kind == "command" and found.value:
        shown = Markup("<code>{}</code>").format(shown)
    if found.link:
        shown = Markup('<a href="{}">{}</a>').format(url_for(found.link.endpoint, **dict(found.link.params)), shown)
    if found.marks:
        shown = Markup(" ").join([shown, *(_mark(m) for m in found.marks)])
    classes = [c for c in ("num" if column.numeric else "", f"tone-{found.tone}" if found.tone else "") if c]
    tag = "th" if column.label else "td"
    value = found.value if isinstance(found.value, (int, float)) and not isinstance(found.value, bool) else None
    return Markup('<{tag}{cls}{value}>{shown}</{tag}>').format(
        tag=Markup(tag), cls=Markup(f' class="{" ".join(classes)}"') if classes else "",
        value=Markup(' data-value="{}"').format(value) if value is not None else "", shown=shown)


def row_attributes(row: Row) -> Markup:
    parts = [Markup(' data-{}="{}"').format(key, value) for key, value in row.attributes.items()]
    if row.tone:
        parts.append(Markup(' class="tone-{}"').format(row.tone))
    return Markup("").join(parts)


def lacking(table: Table) -> list[Markup]:
    """Each thing the table lacks: what, what it needs, and the command that adds it (as code)."""
    return [Markup("{}: {}: ").format(lack.subject, lack.needs)
            + (Markup("<code>{}</code>").format(lack.command) if lack.command else lack.reason)
            for lack in table.lacking]
