"""Print kbert's module-level import graph and any import cycle in it (the layout test uses the same code).

Between modules, only imports executed when a module is imported count (top-level statements, ``try``/``if``
blocks included); imports inside functions are deliberate lazy imports and cannot form an import circle.
Between packages (``--packages``: kbert's subpackages and top-level modules), imports inside functions count
too: a lazy import saves start-up time, but the package still depends on what it imports.

    python tools/import_graph.py             # "module -> imported kbert modules", then the cycles (none expected)
    python tools/import_graph.py --layers    # the same, collapsed to packages (kbert.tasks.token_classification, ...)
    python tools/import_graph.py --packages  # kbert.tasks, kbert.training, kbert.errors, ...: lazy imports too
"""

from __future__ import annotations

import argparse
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(tree: ast.Module, module: str, is_package: bool, lazy: bool = False) -> set[str]:
    """The modules ``module`` imports when it is imported; with ``lazy``, also those its functions import."""
    found: set[str] = set()

    def visit(statements):
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative import
                    base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                found.add(prefix)
                found.update(f"{prefix}.{alias.name}" for alias in node.names)
            elif isinstance(node, (ast.If, ast.Try, ast.With)) or (lazy and isinstance(node, _BODIES)):
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(node, block, []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return found


# statements with a body of statements that a lazy import may sit in
_BODIES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.For, ast.AsyncFor, ast.While, ast.AsyncWith)


def import_graph(package: str = "kbert", lazy: bool = False) -> dict[str, set[str]]:
    """``module -> kbert modules it imports at import time`` for every module of ``package``; with ``lazy``,
    imports inside functions count too."""
    paths = sorted((ROOT / package).rglob("*.py"))
    modules = {module_name(p): p for p in paths}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = _top_level_imports(tree, name, path.name == "__init__.py", lazy)
        # a module's own parent packages are imported before it anyway: not an edge
        graph[name] = {m for m in imported if m in modules and m != name and not name.startswith(m + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every elementary cycle found by depth-first search (each reported once, from its smallest module)."""
    found, seen = [], set()

    def walk(start, node, path):
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                cycle = path + [start]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append(cycle)
            elif nxt not in path and nxt > start:
                walk(start, nxt, path + [nxt])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def collapse(graph: dict[str, set[str]], depth: int = 3) -> dict[str, set[str]]:
    """The graph between packages (module names cut to ``depth`` parts)."""
    out: dict[str, set[str]] = {}
    for name, targets in graph.items():
        src = ".".join(name.split(".")[:depth])
        out.setdefault(src, set()).update(t2 for t in targets if (t2 := ".".join(t.split(".")[:depth])) != src)
    return out


def package_graph(package: str = "kbert") -> dict[str, set[str]]:
    """``kbert.X -> kbert.Y`` between subpackages and top-level modules, lazy imports included."""
    return collapse(import_graph(package, lazy=True), depth=2)


def cycle_report(found: list[list[str]]) -> str:
    return "\n".join("  " + " -> ".join(cycle) for cycle in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", action="store_true", help="collapse modules to their packages")
    parser.add_argument("--packages", action="store_true",
                        help="kbert's subpackages and top-level modules, imports inside functions included")
    args = parser.parse_args()
    graph = package_graph() if args.packages else import_graph()
    shown = collapse(graph) if args.layers else graph
    for name in sorted(shown):
        print(f"{name} -> {', '.join(sorted(shown[name])) or '-'}")
    found = cycles(graph)
    print(f"\nimport cycles: {len(found)}")
    if found:
        print(cycle_report(found))


if __name__ == "__main__":
    main()
