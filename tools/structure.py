"""The code's shape, measured (docs/ARCHITECTURE.md keeps the figures): the largest modules
and functions, which modules import the job record's schema, the import cycles between the
service's rooms (its folders and top-level modules) and between its files, the floor each
room stands on and any import of a floor above, and imports past the extraction contract.

``python -m tools.structure`` prints the figures; ``tests/unit/test_structure.py`` holds
the rules (no cycle between rooms, the engine and the model layer never import the record).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lambdas" / "atlas_codex"
RECORD_SCHEMA = "atlas_codex.jobs.record"


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    lines: int
    imports: frozenset[str]
    """Every ``atlas_codex`` module it imports, at any depth of its code (lazy imports too)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, name: str, is_package: bool) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module
            for alias in node.names:
                yield f"{module}.{alias.name}"  # ``from package import module``


def modules() -> dict[str, Module]:
    found: dict[str, Module] = {}
    paths = sorted(PACKAGE.rglob("*.py"))
    names = {_module_name(p) for p in paths}
    for path in paths:
        name = _module_name(path)
        text = path.read_text()
        tree = ast.parse(text)
        imported = {
            i
            for i in _imports(tree, name, path.name == "__init__.py")
            if i in names and i not in (name, "atlas_codex")  # the root only holds rooms
        }
        found[name] = Module(name, path, text.count("\n"), frozenset(imported))
    return found


GROUND, CONTRACTS, ROOMS, DOORS = range(4)
FLOOR_NAMES = ("ground", "contracts", "rooms", "doors")
FLOORS: dict[str, int] = {
    # values, limits, names, settings readers, the SSRF guard, AWS clients, price tables
    "ground": GROUND,
    "console": GROUND,  # the console's static files
    # what the rooms agree on: the extraction contract; the accounts (keys, spend, budgets)
    "extraction": CONTRACTS,
    "accounts": CONTRACTS,
    # the extraction workshop, beside the job side and its notifications
    "engine": ROOMS,
    "llm": ROOMS,
    "render": ROOMS,
    "jobs": ROOMS,
    "notifications": ROOMS,
    # what a request or an event comes in through, and what puts the rooms together
    "health": DOORS,
    "api": DOORS,
    "wiring": DOORS,
    "handlers": DOORS,
}
"""Each room's floor (docs/ARCHITECTURE.md): a module imports its own floor and those
below, never one above."""
WORKSHOP: frozenset[str] = frozenset({"engine", "llm", "render"})
"""The extraction side: the job side reaches it only through the contract."""
JOB_SIDE: frozenset[str] = frozenset({"jobs", "notifications", "accounts"})


def floor_of(module: str) -> int | None:
    """The floor a module's room stands on (None: a room no floor names)."""
    return FLOORS.get(room(module).removeprefix("atlas_codex.").removeprefix("atlas_codex"))


def upward_imports(found: dict[str, Module]) -> list[str]:
    """Imports of a room on a higher floor, as ``module -> imported``."""
    out = []
    for module in found.values():
        here = floor_of(module.name)
        for imported in sorted(module.imports):
            there = floor_of(imported)
            if here is not None and there is not None and there > here:
                out.append(f"{module.name} -> {imported}")
    return out


def contract_bypasses(found: dict[str, Module]) -> list[str]:
    """Imports from the job side into the extraction workshop (past the contract)."""
    out = []
    for module in found.values():
        if _short_room(module.name) not in JOB_SIDE:
            continue
        out += [
            f"{module.name} -> {i}" for i in sorted(module.imports) if _short_room(i) in WORKSHOP
        ]
    return out


def _short_room(module: str) -> str:
    return room(module).removeprefix("atlas_codex.")


def near_names(found: dict[str, Module]) -> list[tuple[str, str]]:
    """Pairs of module or folder names that differ by one letter (``table``/``tables``):
    a newcomer reads one for the other."""
    names = sorted({part for name in found for part in name.split(".")[1:]})

    def one_apart(a: str, b: str) -> bool:
        if len(a) == len(b):
            return sum(x != y for x, y in zip(a, b, strict=True)) == 1
        short, long = sorted((a, b), key=len)
        return len(long) - len(short) == 1 and any(
            long[:i] + long[i + 1 :] == short for i in range(len(long))
        )

    return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :] if one_apart(a, b)]


def module_graph(found: dict[str, Module]) -> dict[str, set[str]]:
    """Module -> the modules it imports (a package's ``__init__`` aside: it only names)."""
    return {m.name: set(m.imports) for m in found.values()}


def room(module: str) -> str:
    """The room a module lives in: its folder under ``atlas_codex``, or itself at the top."""
    parts = module.split(".")
    return ".".join(parts[:2])


def room_graph(found: dict[str, Module]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in found.values():
        for imported in module.imports:
            if room(imported) != room(module.name):
                graph[room(module.name)].add(room(imported))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one room (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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


def functions(found: dict[str, Module]) -> list[tuple[int, str]]:
    sizes = []
    for module in found.values():
        for node in ast.walk(ast.parse(module.path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
                sizes.append((node.end_lineno - node.lineno + 1, f"{module.name}.{node.name}"))
    return sorted(sizes, reverse=True)


def record_importers(found: dict[str, Module]) -> list[str]:
    return sorted(m.name for m in found.values() if RECORD_SCHEMA in m.imports)


def report() -> str:
    found = modules()
    biggest = sorted(found.values(), key=lambda m: -m.lines)[:5]
    importers = record_importers(found)
    groups = cycles(room_graph(found))
    file_groups = cycles(module_graph(found))
    graph = room_graph(found)
    lines = [
        f"rooms: {len(graph.keys() | {r for v in graph.values() for r in v})}, "
        f"import arrows between them: {sum(len(v) for v in graph.values())}, "
        f"modules at the package root: "
        f"{sum(1 for m in found if m.count('.') == 1 and found[m].path.name != '__init__.py')}",
        "largest modules (lines):",
    ]
    lines += [f"  {m.lines:5d}  {m.name}" for m in biggest]
    lines.append("largest functions (lines):")
    lines += [f"  {n:5d}  {name}" for n, name in functions(found)[:5]]
    lines.append(f"modules importing {RECORD_SCHEMA}: {len(importers)}")
    lines += [f"  {name}" for name in importers]
    lines.append(f"import cycles between rooms: {len(groups)}")
    lines += [f"  {' <-> '.join(group)}" for group in groups]
    lines.append(f"import cycles between files: {len(file_groups)}")
    lines += [f"  {' <-> '.join(group)}" for group in file_groups]
    bypasses = contract_bypasses(found)
    lines.append(f"imports past the extraction contract: {len(bypasses)}")
    lines += [f"  {b}" for b in bypasses]
    upward = upward_imports(found)
    lines.append(f"imports of a higher floor: {len(upward)}")
    lines += [f"  {u}" for u in upward]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(report() + "\n")
