"""The verbs of `harness`, one module per group of `--help`; harness/cli.py holds the app they register on."""
