"""Imports flow one way, down the pipeline, and no package imports itself in a circle.

The layout is the pipeline (gateway -> recording -> render -> text -> index ->
storage); a package may import the packages below it and the shared
foundations, never one above it or beside it. Read from the source with
``ast``, every import counts: module level, inside functions, and
``TYPE_CHECKING`` blocks (a type-only cycle is still a cycle for a reader).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gui_recorder"

# Importable by everyone: they import nothing of ours but each other (in this order).
FOUNDATIONS = ("errors", "vocabulary", "settings", "protocol")
# Upper layers first. A package may import packages of a strictly greater rank.
RANKS = {
    "cli": 0,
    "stack": 1,  # the dev stack: starts components, seeds demo data through the gateway's domain
    "worker": 2,  # orchestrates the offline pipeline
    "gateway": 2,  # relays, records, serves
    "sessions": 3,  # the sessions domain both of them use: rows, evidence, imports, forgetting
    "guardrails": 3,  # policies, alerts and the typed-line check both of them use (issue 14)
    "db": 4,  # tables and the job queue
    "guacd": 4,  # the guacd client
    "recording": 5,
    "render": 6,
    "text": 7,
    "index": 8,
    "storage": 9,
    "sealing": 10,  # encryption, chain, signatures, offline verification: pure, used by every layer above
    "siem": 10,  # audit sinks: the database feeds them in every process (gateway, worker, CLI)
    "telemetry": 10,  # traces, structured logs and their context: used at every stage
}


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by one source file."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if module.endswith(".__init__"):
        module = module[: -len(".__init__")]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            # `from gui_recorder.render import handlers` imports a module too.
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return {name for name in out if name == "gui_recorder" or name.startswith("gui_recorder.")}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_rank():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    unranked = (packages | modules) - set(RANKS) - set(FOUNDATIONS)
    assert not unranked, f"place these in the pipeline order of tests/test_layers.py: {sorted(unranked)}"


def test_imports_flow_down_the_pipeline():
    modules = _modules()
    wrong = []
    for name, path in sorted(modules.items()):
        source = _top(name)
        for target_module in _imports(path):
            if target_module not in modules:
                continue  # `from gui_recorder.x import SomeClass`: the module itself is also listed
            target = _top(target_module)
            if not target or target == source:
                continue
            if source in FOUNDATIONS:
                ok = target in FOUNDATIONS and FOUNDATIONS.index(target) < FOUNDATIONS.index(source)
            else:
                ok = target in FOUNDATIONS or RANKS[target] > RANKS[source]
            if not ok:
                wrong.append(f"{name} imports {target_module}")
    assert not wrong, "imports against the pipeline order:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in _imports(path):
            # A package's __init__ re-exports its modules: an edge into it is an edge into them,
            # but the package's own __init__ importing its modules is not a cycle.
            if target in modules and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(modules):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
