"""The layers of harness/ hold, read from the code's own imports (every import, inside functions too): views
(terminal, markdown, PNG, web) never touch the database, analysis never reaches into measuring, and no two
modules import each other, however far round."""
from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).parent.parent / "harness"


def _module(path: Path) -> str:
    parts = path.relative_to(HARNESS.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports (absolute names; `from .x import y` names x.y where y is a module)."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in HARNESS.rglob("*.py") if "migrations" not in p.parts}
    return {name: {m for m in _imports(path) if m in files and m != name} for name, path in files.items()}


def test_views_read_no_database_and_analysis_no_measuring():
    files = {_module(p): p for p in HARNESS.rglob("*.py") if "migrations" not in p.parts}
    for name, path in files.items():
        imported = _imports(path)
        if name.startswith(("harness.views", "harness.web")):
            touching = sorted(m for m in imported if m.startswith(("sqlalchemy", "harness.store")))
            assert touching == [], f"{name} reads the database itself: {touching}"
        if name.startswith("harness.analysis"):
            measuring = sorted(m for m in imported if m.startswith("harness.measure"))
            assert measuring == [], f"{name} reaches into measuring: {measuring}"
    assert "harness.views.table" in files and "harness.analysis.claims" in files  # the walk found them


def test_no_module_imports_itself_round_a_circle():
    graph = _graph()
    circles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert circles == []
