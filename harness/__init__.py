"""The harness: CLI, sweep planning, timing loop, statistics, storage and reports."""
