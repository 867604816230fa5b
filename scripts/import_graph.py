"""The package's import graph: circles, and imports that run up the layers.

    python scripts/import_graph.py

Reads every module of ``liverhealth`` with ``ast`` and prints the number of modules and edges,
every import circle between packages or top-level modules and between modules, and every import
from a lower layer into a higher one. Imports inside functions count (a lazy import is still a
dependency); those under ``if TYPE_CHECKING:`` do not (they never run).

Layers, lowest first: the package's version, the domain and its helpers (documents among them);
imaging, analysis, inference, editing and pacs; reporting and storage; results, review, viewer,
comparison and accounts; the workflow; the faces (cli, gui, web, batch). Exit status 1 when a
circle or an upward import is found.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "liverhealth"
LAYERS = (
    {"__init__", "domain", "errors", "text", "progress", "config", "redact", "presentation", "documents"},
    {"imaging", "analysis", "inference", "editing", "pacs"},
    {"reporting", "storage"},
    {"results", "review", "viewer", "comparison", "accounts"},
    {"workflow"},
    {"cli", "cli_review", "gui", "web", "batch", "__main__"},
)


def unit(module: str) -> str:
    """The package (``liverhealth.imaging``) or top-level module a module belongs to."""
    return module.split(".")[1] if module.count(".") >= 1 else "__init__"


def layer(name: str) -> int:
    for index, members in enumerate(LAYERS):
        if name in members:
            return index
    raise SystemExit(f"{name} is in no layer: add it to LAYERS in scripts/import_graph.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str) -> set[str]:
    """The liverhealth modules ``path`` imports (relative imports resolved)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("liverhealth")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".")[: -node.level + (1 if path.name == "__init__.py" else 0) or None]
                base = ".".join([*package, base] if base else package)
            if base.startswith("liverhealth"):
                found.add(base)
                found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def main() -> int:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        edges[name] = {target for target in imports(path, name) if target in modules and target != name}
    units: dict[str, set[str]] = defaultdict(set)
    upward = []
    for source, targets in edges.items():
        for target in targets:
            a, b = unit(source), unit(target)
            if a != b:
                units[a].add(b)
                if layer(b) > layer(a):
                    upward.append(f"{source} -> {target}")
    circles = _circles(units) + _circles(edges)
    print(f"{len(modules)} modules, {sum(map(len, edges.values()))} import edges, {len(units)} units")
    print(f"circles (between units, then between modules): {len(circles)}")
    for circle in circles:
        print("  " + " <-> ".join(circle))
    print(f"imports up the layers: {len(upward)}")
    for line in sorted(upward):
        print("  " + line)
    return 1 if circles or upward else 0


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one unit (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


if __name__ == "__main__":
    sys.exit(main())
