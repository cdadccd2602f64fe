"""The artifact cache: entries are published whole, damaged ones are rebuilt, failed exports leave nothing."""
from __future__ import annotations

import pytest

from harness.measure import cache


def test_cache_rebuilds_corrupt_entries(tmp_path):
    calls = []

    def export(out):
        calls.append(out)
        (out / "model.bin").write_bytes(b"weights" * 100)
        return out / "model.bin"

    parts = {"spec": "t8", "v": 1}
    path, cached = cache.get_or_build(tmp_path, parts, "model.bin", export)
    assert not cached and path.read_bytes() == b"weights" * 100
    assert cache.get_or_build(tmp_path, parts, "model.bin", export) == (path, True)
    path.write_bytes(b"half-writ")  # damaged after the fact
    path2, cached = cache.get_or_build(tmp_path, parts, "model.bin", export)
    assert not cached and path2.read_bytes() == b"weights" * 100 and len(calls) == 2
    (path2.parent / cache.MANIFEST).unlink()  # an entry whose manifest never got written
    assert cache.get_or_build(tmp_path, parts, "model.bin", export)[1] is False
    assert cache.get_or_build(tmp_path, {**parts, "v": 2}, "model.bin", export)[0] != path


def test_failed_export_leaves_no_entry(tmp_path):
    def export(out):
        (out / "model.bin").write_bytes(b"partial")
        raise RuntimeError("converter crashed")

    with pytest.raises(RuntimeError):
        cache.get_or_build(tmp_path, {"k": 1}, "model.bin", export)
    assert list(tmp_path.iterdir()) == []
