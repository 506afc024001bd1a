"""docs/architecture.md names every part of the code, so a new package cannot go undocumented."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "architecture.md").read_text()


def test_every_package_and_top_level_module_is_on_the_architecture_page():
    package = ROOT / "gui_recorder"
    packages = [p.name for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    modules = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
    missing = [f"{name}/" for name in packages if f"`{name}/`" not in PAGE]
    missing += [name for name in modules if f"`{name}`" not in PAGE]
    assert not missing, f"docs/architecture.md does not describe: {missing}"


def test_the_layer_diagram_lists_the_packages_in_the_checked_order():
    from test_layers import FOUNDATIONS, RANKS

    known = set(RANKS) | set(FOUNDATIONS)
    block = PAGE.split("## Layers", 1)[1].split("```")[1]
    drawn = {}
    depth = 0
    for line in block.strip().splitlines():
        names = []
        for word in line.split():
            if word not in known:
                break  # the row's description begins
            names.append(word)
        if names:
            drawn.update({name: depth for name in names})
            depth += 1
    assert set(RANKS) | set(FOUNDATIONS) <= set(drawn), set(RANKS) - set(drawn)
    order = sorted(RANKS, key=RANKS.get)
    assert [drawn[n] for n in order] == sorted(drawn[n] for n in order), "the diagram's order differs from RANKS"
    assert all((RANKS[a] == RANKS[b]) == (drawn[a] == drawn[b]) for a in RANKS for b in RANKS)
