"""Artifact cache: one directory per hash of everything that shaped the artifact.

An entry is built in a temporary directory and renamed into place, and its manifest (written
last) records each file's sha256 and how long the export took; an entry without a manifest, or whose
files no longer match it, is treated as corrupt, removed and rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MANIFEST = "manifest.json"


def cache_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def write_whole(path: Path, write: Callable[[Path], None]) -> None:
    """A single-file cache entry (reference logits, FLOPs, a built model's weights) written whole: `write(temporary)`
    beside `path` under this process's own name (keeping the suffix, which np.save insists on), then renamed into
    place, so a reader never sees half an entry and two workers writing the same one never mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(temporary)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lookup(root: Path, key: str, artifact_name: str) -> Path | None:
    """The artifact's path if a complete, intact entry exists; a damaged entry is removed."""
    entry = Path(root) / key
    if not entry.exists():
        return None
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        intact = all(file_sha256(entry / name) == digest for name, digest in manifest["files"].items())
    except (OSError, ValueError, KeyError):
        intact = False
    if intact and (entry / artifact_name).exists():
        return entry / artifact_name
    shutil.rmtree(entry, ignore_errors=True)
    return None


def build(root: Path, key: str, artifact_name: str, export, parts: dict) -> Path:
    """Run `export(tmp_dir) -> path` and publish its directory atomically under `key`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        began = time.perf_counter()
        export(tmp)
        seconds = time.perf_counter() - began
        # recursive: some artifacts are bundles (an .mlpackage is a directory)
        files = {str(p.relative_to(tmp)): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"key": parts, "files": files, "build_seconds": seconds}, indent=1,
                                               sort_keys=True))
        entry = root / key
        try:
            os.rename(tmp, entry)
        except OSError:  # another process published the same entry first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        return entry / artifact_name
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def build_seconds(artifact: Path) -> float | None:
    """How long the export of a cached artifact took, as its manifest recorded (None: an older entry)."""
    try:
        return json.loads((Path(artifact).parent / MANIFEST).read_text()).get("build_seconds")
    except (OSError, ValueError):
        return None


def get_or_build(root: Path, parts: dict, artifact_name: str, export,
                 prepare: Callable[[], object] | None = None) -> tuple[Path, bool]:
    """(artifact path, True if it came from the cache). prepare: run on a miss only, before the export's own time
    starts (building the model to export is not the export)."""
    key = cache_key(parts)
    found = lookup(root, key, artifact_name)
    if found is not None:
        return found, True
    if prepare is not None:
        prepare()
    return build(root, key, artifact_name, export, parts), False
