"""The table model as data: JSON (a table's records, or a page's tables by name) and CSV, every column unrounded.
The dashboard's `.json` pages and `--format json` print the same document."""
from __future__ import annotations

import csv
import io
import json
from enum import Enum

from .table import Table


class Format(str, Enum):
    """What a command prints: a table for a terminal (rounded), or every column unrounded as JSON or CSV."""
    table = "table"
    json = "json"
    csv = "csv"


def document(*tables: Table):
    """One table: its records; several (a page): {table id: records}."""
    if len(tables) == 1:
        return tables[0].records()
    return {t.id: t.records() for t in tables}


def _default(value):
    return sorted(value) if isinstance(value, (set, frozenset)) else str(value)


def to_json(data) -> str:
    return json.dumps(data, default=_default)


def to_csv(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    keys = table.keys()
    writer.writerow(keys)
    writer.writerows([[record.get(k) for k in keys] for record in table.records()])
    return buffer.getvalue()
