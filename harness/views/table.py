"""The table model every view draws: built once from an analysis result, rendered as a terminal table, markdown,
a web table, JSON or CSV.

A Table holds the table as shown (columns with a kind, rows of raw values, marks, notes, what is missing and the
command that adds it) and the records JSON and CSV print: every row (or every record row, where the shown rows group
several) over the columns marked `data`, unrounded; a table shown pivoted (targets across) carries its long records
itself, so JSON never nests.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import formats


@dataclass(frozen=True)
class Column:
    key: str  # its name in JSON and CSV
    heading: str = ""  # as shown ("" : the key); lines split by "\n"
    kind: str = "text"  # how its values are formatted (views.formats): ms, share, ratio, count, text, command, ...
    digits: int | None = None  # the kind's default unless set
    shown: bool = True  # drawn in the terminal, markdown and web tables
    web_only: bool = False  # drawn on the web only (a link to another page)
    data: bool = True  # a field of the JSON/CSV records
    label: bool = False  # the row's heading (a <th> on the web)
    mark: str = ""  # a footnote mark after the heading, e.g. "[1]"
    link: "Link | None" = None  # web: where the heading leads

    @property
    def title(self) -> str:
        return (self.heading or self.key) + (f" {self.mark}" if self.mark else "")

    @property
    def numeric(self) -> bool:
        return self.kind in formats.NUMERIC


@dataclass(frozen=True)
class Link:
    """Where a cell leads on the web: a dashboard page (Flask endpoint) and its parameters."""
    endpoint: str
    params: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Mark:
    """A mark whose symbol is markup in markdown ('*' starts emphasis): markdown writes its words instead."""
    symbol: str
    words: str

    def __str__(self) -> str:
        return self.symbol


@dataclass(frozen=True)
class Cell:
    """A value with what the views add to it: marks after it (noisy, †, [2]), a tone (good, bad, warn) and a link."""
    value: Any
    marks: tuple = ()  # str, or Mark
    tone: str | None = None
    link: Link | None = None
    kind: str | None = None  # this cell's own kind, where it is not its column's (a speedup row of a latency table)


@dataclass
class Row:
    values: dict[str, Any]  # column key -> raw value or Cell
    end_section: bool = False  # a rule after it
    attributes: dict[str, str] = field(default_factory=dict)  # web: data-* attributes of its <tr>
    tone: str | None = None

    def cell(self, key: str) -> Cell:
        value = self.values.get(key)
        return value if isinstance(value, Cell) else Cell(value)


@dataclass(frozen=True)
class Lacking:
    """Something a table cannot show yet: what (`subject`), what it needs, and the command that adds it."""
    subject: str
    needs: str
    command: str | None = None  # the command that adds it
    reason: str | None = None  # without a command: why none can (published figures hold none)


@dataclass
class Table:
    id: str  # the web table's element id, and its name in a page's JSON
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # legends and numbered citations, below the table
    lacking: list[Lacking] = field(default_factory=list)
    lacking_intro: str = ""  # the line before the lacking list
    footer: list[str] = field(default_factory=list)  # lines after the lacking list (hints)
    record_rows: list[Row] | None = None  # the rows JSON/CSV print, where they are not the shown ones (grouped)
    records_: list[dict] | None = None  # JSON/CSV rows of a table shown pivoted, where no column names their fields
    record_keys: list[str] | None = None  # with records_: the CSV header

    @property
    def shown(self) -> list[Column]:
        """The columns a terminal or markdown table draws."""
        return [c for c in self.columns if c.shown and not c.web_only]

    @property
    def shown_web(self) -> list[Column]:
        return [c for c in self.columns if c.shown]

    def records(self) -> list[dict]:
        if self.records_ is not None:
            return self.records_
        data = [c.key for c in self.columns if c.data]
        rows = self.rows if self.record_rows is None else self.record_rows
        return [{key: row.cell(key).value for key in data} for row in rows]

    def keys(self) -> list[str]:
        if self.records_ is not None:
            return self.record_keys or (list(self.records_[0]) if self.records_ else [])
        return [c.key for c in self.columns if c.data]


def table(id: str, title: str, columns: list[Column], rows: list[tuple | dict | Row], **extra) -> Table:
    """A Table from plain rows: tuples in column order, dicts by key, or Rows."""
    keys = [c.key for c in columns]
    made = [r if isinstance(r, Row) else Row(dict(zip(keys, r)) if isinstance(r, tuple) else r) for r in rows]
    return Table(id, title, columns, made, **extra)
