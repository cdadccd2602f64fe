"""`harness`: time FastViT on every runtime of a device, store every sample, read results back.

The app, the options its verbs share and what every verb does alike (open the database, say a refusal in one
sentence on stderr with exit code 2, exit 1 when some work did not end ok). The verbs live in harness/commands, one
module per group of `--help` (measure, ingest, read, lab): each parses its options, calls into the harness
(measure/ plans and times, ingest/ reads other tools' numbers, analysis/ computes results, views/ lays them out)
and prints what comes back.
"""
from __future__ import annotations

import typer

from .commands import advise, common, ingest, lab, measure, predict, read

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Time FastViT on every runtime of a device; every run and sample in SQL.")
for group in (measure, advise, predict, ingest, read, lab):  # in the order `--help` shows their groups
    app.add_typer(group.app)


def main() -> None:
    try:
        app()
    except Exception as exc:  # a full disk mid-sweep is said in one line, not a traceback; anything else is a bug
        if (where := common.disk_full(exc)) is None:
            raise
        common.say_error(common.DISK_FULL.format(where))
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
