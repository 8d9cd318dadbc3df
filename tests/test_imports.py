"""The package's import graph (deferred imports included) has no circle: layers
reach only down, and the registry never imports its entries."""

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parent.parent / "aninfonce"


def _graph() -> nx.DiGraph:
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    g = nx.DiGraph()
    for name, f in mods.items():
        pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(f.read_text())):  # deferred imports inside functions count too
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            g.add_edges_from((name, t) for t in targets if t in mods and t != name)
    return g


def test_no_import_circle():
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, " | ".join(" -> ".join(c) for c in cycles[:5])


def test_registry_does_not_import_its_entries():
    g = _graph()
    assert not any(t.startswith("aninfonce.experiments") for t in nx.descendants(g, "aninfonce.registry"))
