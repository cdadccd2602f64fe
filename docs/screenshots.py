"""The README's dashboard screenshots, taken by the tests' headless Chromium from `harness serve` on a database.

    python docs/screenshots.py --db results.db [--out docs/img]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import browser  # noqa: E402

PAGES = {"overview": "/", "claims": "/claims", "model": "/model/t8", "history": "/history", "lab": "/lab"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    parser.add_argument("--page", action="append", default=[], metavar="NAME=PATH", help="another page to take")
    args = parser.parse_args()
    pages = {**PAGES, **dict(p.split("=", 1) for p in args.page)}
    args.out.mkdir(parents=True, exist_ok=True)
    with browser.serve(args.db) as base:
        chromium = browser.Browser(base)
        try:
            for name, path in pages.items():
                page = chromium.open(path)
                problems = page.visit.console_errors + page.visit.page_errors + page.visit.outside
                if problems:
                    raise SystemExit(f"{path}: {problems}")
                print(browser.screenshot(page, args.out / f"dashboard-{name}.png"))
                page.close()
        finally:
            chromium.close()


if __name__ == "__main__":
    main()
