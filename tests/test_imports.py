"""The import rules of the package's picture: no circle (deferred imports
included), the registry never imports its entries, and the reading half
(analyses, verdicts, claims, report, plots, results reading, manifests)
reaches no torch, no trainer, no runner, no executor and no speed module, so
``--plot-only`` and ``--check`` run where only pandas, matplotlib and scipy
are installed."""

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parent.parent / "aninfonce"
ROOT = PKG.parent

# the reading half's entry points; everything they reach must stay torch-free
READING = ("aninfonce.cli", "aninfonce.analyses", "aninfonce.report", "aninfonce.report_sections", "aninfonce.verdicts",
           "aninfonce.manifest", "aninfonce.crosscheck", "aninfonce.plots", "aninfonce.reading", "aninfonce.results",
           "aninfonce.specs")
# what the reading half may never reach (modules of the package, and third-party packages)
PRODUCING = ("aninfonce.runner", "aninfonce.executors", "aninfonce.speed", "aninfonce.trainers", "aninfonce.studies",
             "aninfonce.torchrun", "aninfonce.slurm", "aninfonce.latents", "aninfonce.losses", "aninfonce.nets",
             "aninfonce.metrics", "aninfonce.data.mnist", "aninfonce.data.images", "aninfonce.data.augment")
# the project's other dependencies (seaborn: only the tests, which check the figures' theme against its own)
HEAVY = ("torch", "torchvision", "sklearn", "submitit", "tqdm", "filelock", "seaborn")


def _graph(top_level_only: bool = False) -> nx.DiGraph:
    """Module -> the modules it imports (``top_level_only``: the imports a module runs when it is
    imported, leaving out those deferred into functions); third-party packages by their top name."""
    mods = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    g = nx.DiGraph()
    for name, f in mods.items():
        pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(f.read_text())
        nodes = _top_level(tree) if top_level_only else ast.walk(tree)  # deferred imports inside functions count too
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                base = pkg.split(".")[: len(pkg.split(".")) - node.level + 1] if node.level else []
                mod = ".".join(base + ([node.module] if node.module else [])) if node.level else node.module or ""
                targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            g.add_edges_from((name, t) for t in targets if t in mods and t != name)
            g.add_edges_from((name, t.split(".")[0]) for t in targets if t.split(".")[0] in HEAVY)
    return g


def _top_level(tree: ast.Module):
    """The import statements that run at import time: module level, including under if / try (not under
    ``if TYPE_CHECKING:``, which only type checkers run)."""
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def test_no_import_circle():
    cycles = list(nx.simple_cycles(_graph()))
    assert not cycles, " | ".join(" -> ".join(c) for c in cycles[:5])


# A module a newcomer reads in one sitting: past this many lines, a module holds two subjects to split.
MAX_MODULE_LINES = 420


def test_no_module_is_longer_than_one_subject():
    package = Path(__file__).resolve().parent.parent / "aninfonce"
    long = {str(p.relative_to(package)): n for p in package.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_registry_does_not_import_its_entries():
    g = _graph()
    assert not any(t.startswith(("aninfonce.analyses", "aninfonce.studies")) for t in nx.descendants(g, "aninfonce.registry"))


def test_the_reading_half_reaches_no_torch_and_no_producing_module():
    """Every import the reading half runs when it is imported (functions' deferred imports aside: the CLI
    defers the producing half into the commands that train or plan) stays clear of the producing half."""
    g = _graph(top_level_only=True)
    for start in READING:
        reached = nx.descendants(g, start)
        bad = sorted(t for t in reached if t in HEAVY or t.startswith(PRODUCING))
        assert not bad, f"{start} reaches {bad}: " + " -> ".join(nx.shortest_path(g, start, bad[0]))


def test_analyses_never_import_studies():
    """The study reads the science it sweeps from its analysis, never the other way round, and no
    analysis (deferred imports included) reaches a study or a trainer."""
    g = _graph()
    for mod in [n for n in g if n.startswith("aninfonce.analyses")]:
        bad = sorted(t for t in nx.descendants(g, mod) if t.startswith(("aninfonce.studies", "aninfonce.trainers")))
        assert not bad, f"{mod} reaches {bad}"


def test_plot_only_and_check_load_no_torch(tmp_path):
    """A real process: the CLI's reading path, with every analysis registered and the report, verdicts and
    manifests imported, loads none of the project's dependencies but numpy, pandas, matplotlib and scipy
    (seaborn neither), and none of the trainers, the runner, the executors or the speed module."""
    code = ("import sys; from aninfonce import cli, report, manifest, verdicts; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in %r or m.startswith(%r)); print(bad)"
            % (HEAVY, PRODUCING))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_cli_names_the_executors_it_offers():
    from aninfonce import cli, executors

    assert cli.EXECUTORS == executors.EXECUTORS


def test_the_specs_name_every_loss_the_losses_define():
    from aninfonce import losses, specs

    assert set(specs.LOSS_NAMES) == set(losses.LOSSES)
    assert set(specs.SYNTHETIC_LOSSES) | set(specs.IMAGE_LOSSES) <= set(losses.LOSSES)
