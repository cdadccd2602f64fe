"""The table model as a rich table on a terminal, and what a command prints while it works (progress, skips)."""
from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table as RichTable

from . import formats
from .table import Column, Row, Table

TONES = {"good": "green", "bad": "red", "warn": "yellow", "predicted": "dim italic"}


def _mark(mark) -> str:
    """A flag word (noisy) in yellow; a footnote or symbol ([2], †, *) as it is."""
    mark = str(mark)
    return f"[yellow]{escape(mark)}[/yellow]" if mark.isalpha() else escape(mark)


def cell(row: Row, column: Column) -> str:
    found = row.cell(column.key)
    shown = escape(formats.text(found.value, found.kind or column.kind, column.digits))
    tone = TONES.get(found.tone or "")
    if tone:
        shown = f"[{tone}]{shown}[/{tone}]"
    return " ".join([shown, *(_mark(m) for m in found.marks)])


def render(table: Table) -> RichTable:
    out = RichTable(title=escape(table.title) or None)
    for column in table.shown:
        out.add_column(escape(column.title), justify="right" if column.numeric else "left")
    for row in table.rows:
        out.add_row(*[cell(row, c) for c in table.shown], end_section=row.end_section)
    lines = list(table.notes)
    if table.lacking:
        lines += [table.lacking_intro] if table.lacking_intro else []
        lines += [f"  {lack.subject}: {lack.needs}: {lack.command or lack.reason}" for lack in table.lacking]
    lines += table.footer
    if lines:
        out.caption = escape("\n".join(lines))
        out.caption_justify = "left"
    return out


def show(console: Console, fmt, *tables: Table) -> None:
    """Print tables: drawn for a terminal, or their records as one JSON document (a page's: {table id: records}) or
    as CSV (one table)."""
    from .serialize import Format, document, to_csv, to_json

    if fmt == Format.json:
        console.print_json(to_json(document(*tables)))
    elif fmt == Format.csv:
        sys.stdout.write(to_csv(tables[0]))
    else:
        for table in tables:
            console.print(render(table))


def skipped(console: Console, target, reason: str) -> None:
    console.print(f"[yellow]skip[/yellow] {escape(target.name)}: {escape(reason)}")


class JobProgress:
    """Progress bars on stderr, one per lane (one for a sweep here, one per agent of a lab), with a line for each
    job that did not end ok. Given how long each job took before (`expected`: job -> seconds, from the targets' own
    history), a sweep's bar advances by those seconds and says how long is left."""

    def __init__(self, console: Console, totals: dict[str, int], expected=None, jobs: list | None = None,
                 rounds: int = 1):
        self.expected = expected if expected and jobs and all(expected(j) for j in jobs) else None
        self.jobs_done = 0
        self.jobs_total = sum(totals.values())
        columns = [TextColumn("{task.description}"), BarColumn()]
        if self.expected:  # the bar counts expected seconds; the text counts jobs
            columns += [TextColumn("{task.fields[jobs]}"), TimeElapsedColumn(), TextColumn("left ~"),
                        TimeRemainingColumn()]
            totals = {lane: rounds * sum(self.expected(j) for j in jobs) for lane in totals}
        else:
            columns += [TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn()]
        self.progress = Progress(*columns, console=console)
        self.bars = {lane: self.progress.add_task(escape(lane), total=total, jobs=f"0/{self.jobs_total}")
                     for lane, total in totals.items()}

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def started(self, job, lane: str = "sweep") -> None:
        self.progress.update(self.bars[lane], description=escape(job.describe()))

    def done(self, job, result, lane: str = "sweep") -> None:
        prefix = "" if lane == "sweep" else f"{lane}: "
        if result.status != "ok":
            self.progress.console.print(f"[red]{result.status}[/red] {escape(prefix + job.describe())}: "
                                        f"{escape(str(result.error))}")
        self.jobs_done += 1
        self.progress.update(self.bars[lane], advance=self.expected(job) if self.expected else 1,
                             description=escape(prefix + job.describe()), jobs=f"{self.jobs_done}/{self.jobs_total}")


class BudgetProgress:
    """A bar of the time a budgeted search (harness advise) has spent of its budget, the job it is on, and a line
    for each job that did not end ok."""

    def __init__(self, console: Console, budget_s: float, describe=lambda job: job.describe()):
        self._what = describe  # a job as the bar names it
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                                 TextColumn(f"of {budget_s / 60:.0f} min budget, {{task.fields[jobs]}} jobs"),
                                 console=console)
        self.bar = self.progress.add_task("", total=budget_s, jobs=0)
        self.jobs = 0

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def _elapsed(self) -> float:
        return self.progress.tasks[0].elapsed or 0.0

    def started(self, job) -> None:
        self.progress.update(self.bar, completed=self._elapsed(), description=escape(self._what(job)))

    def done(self, job, result) -> None:
        if result.status not in ("ok", "screened"):
            self.progress.console.print(f"[red]{result.status}[/red] {escape(self._what(job))}: "
                                        f"{escape(str(result.error))}")
        self.jobs += 1
        self.progress.update(self.bar, completed=self._elapsed(), jobs=self.jobs)
