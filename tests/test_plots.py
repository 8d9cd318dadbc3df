"""How figures are written: one tight box measured per figure, and many
figures drawn in a pool of processes, with the same bytes as drawn one after
another here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from aninfonce import plots


def _figure(caption: bool = True):
    """A figure with what moves a tight box: two panels after tight_layout, a log axis, a legend under the
    panels, a title above them, and (``caption``) the caption line."""
    import matplotlib.pyplot as plt

    plots.setup_style()
    fig, axes = plt.subplots(1, 2, figsize=(7, 3))
    x = np.logspace(0, 4, 30)
    for i, ax in enumerate(axes):
        ax.plot(x, np.sqrt(x) + i, label=f"curve {i}")
        ax.set(xscale="log", xlabel="training step", ylabel="R² (held-out)", title=f"panel {i}")
    fig.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2)
    fig.suptitle("a title above the panels", y=1.05)
    fig.tight_layout()
    return fig


def drawn_figure(out: Path, name: str) -> list[Path]:
    """A task for :func:`draw` (module level, so it travels to a worker)."""
    return plots.save(_figure(), out, name, "A caption line under the figure. Profile quick, 3 seeds (0, 1, 2).")


def draw(tasks: list, jobs: int) -> list:
    """``fn(*args)`` of each task by a :class:`plots.Drawing` of ``jobs`` processes, results in order."""
    with plots.Drawing(jobs, len(tasks)) as drawing:
        futures = [drawing.submit(fn, *args) for fn, args in tasks]
        return [f.result() for f in futures]


def test_save_writes_the_png_a_tight_savefig_writes(tmp_path):
    """The one measured box gives the PNG ``bbox_inches="tight"`` writes, byte for byte, and the PDF a
    page of that size (PDF points are 1/72 in)."""
    import re

    import matplotlib.pyplot as plt

    png, pdf = drawn_figure(tmp_path, "mine")
    fig = _figure()
    bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
    fig.text(0.5, bottom - 0.01, "A caption line under the figure. Profile quick, 3 seeds (0, 1, 2).", ha="center",
             va="top", fontsize=8, color="0.3")
    fig.savefig(tmp_path / "tight.png", bbox_inches="tight")
    box = plots.tight_box(fig)
    plt.close(fig)
    assert png.read_bytes() == (tmp_path / "tight.png").read_bytes()
    page = [float(v) for v in re.search(rb"/MediaBox \[ *([-\d. ]+)\]", pdf.read_bytes()).group(1).split()]
    assert np.allclose(page[2:], [72 * box.width, 72 * box.height])


def test_a_pool_draws_the_same_bytes_in_the_tasks_order(tmp_path):
    """Two worker processes write the same files as this process alone; a task that cannot travel to a
    worker (a lambda) is drawn here, and every result comes back in the tasks' order. Run where the pool
    runs, in a process without torch (``--plot-only``; this test process has torch loaded)."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_plots; "
            f"from pathlib import Path; test_plots.pool_matches_alone(Path({str(tmp_path)!r})); "
            "assert 'torch' not in sys.modules")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert res.returncode == 0, res.stderr


def test_with_torch_loaded_figures_are_drawn_here():
    """After training (torch loaded) no worker is forked or spawned: this process draws."""
    assert "torch" in sys.modules
    assert plots.drawing_jobs(2, 10) == 1
    assert draw([(os.getpid, ()), (os.getpid, ())], jobs=2) == [os.getpid()] * 2


def test_one_process_draws_when_the_result_is_asked_for():
    """Without a pool a submitted figure waits, so this process judges first and draws after, in the order
    the results are collected (as one process always did); each is drawn once."""
    calls = []
    with plots.Drawing(1, 3) as drawing:
        first, second = (drawing.submit(lambda n=n: calls.append(n) or n) for n in (1, 2))
        assert calls == []
        assert (second.result(), first.result(), second.result()) == (2, 1, 2)
    assert calls == [2, 1]


def pool_matches_alone(tmp_path: Path) -> None:
    assert plots.drawing_jobs(2, 4) == 2, "no pool here: the comparison would test nothing"
    with plots.Drawing(2, 2) as drawing:  # a submitted figure is drawn by a worker while this process goes on
        assert drawing.submit(os.getpid).result() != os.getpid()
    drawn_here = []
    tasks = lambda out: [(drawn_figure, (out, "a")), (plots.no_data, (out, "b", "no runs yet")),
                         (lambda: drawn_here.append(os.getpid()) or ["here"], ()), (drawn_figure, (out, "c"))]
    alone = draw(tasks(tmp_path / "alone"), jobs=1)
    pooled = draw(tasks(tmp_path / "pool"), jobs=2)
    assert drawn_here == [os.getpid(), os.getpid()]
    assert [[p.name for p in r] if r != ["here"] else r for r in pooled] == [
        ["a.png", "a.pdf"], ["b.png", "b.pdf"], ["here"], ["c.png", "c.pdf"]]
    files = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "pool").iterdir()) and len(files) == 6
    for name in files:
        assert (tmp_path / "alone" / name).read_bytes() == (tmp_path / "pool" / name).read_bytes(), name


def test_no_worker_is_forked_on_macos(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch")  # as in --plot-only, where Linux forks the pool
    monkeypatch.setattr(sys, "platform", "linux")
    assert plots.drawing_jobs(2, 10) == 2
    monkeypatch.setattr(sys, "platform", "darwin")
    assert plots.drawing_jobs(2, 10) == 1


def test_the_pool_has_at_most_one_worker_per_figure(monkeypatch):
    monkeypatch.setattr(plots, "_can_fork", lambda: True)
    assert plots.drawing_jobs(4, 3) == 3
    assert plots.drawing_jobs(1, 10) == 1
    assert 1 <= plots.drawing_jobs(None, 2) <= 2


def test_an_empty_panel_says_why_on_flat_and_3d_axes(tmp_path):
    """Figure 5's sphere panels are 3-D axes: a panel without its points still says why, as a flat one does."""
    import matplotlib.pyplot as plt

    plots.setup_style()
    fig = plt.figure(figsize=(6, 3))
    flat, sphere = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")
    for ax in (flat, sphere):
        plots.empty_panel(ax, "a panel", "no drawn points stored")
    assert [t.get_text() for ax in (flat, sphere) for t in ax.texts] == ["no drawn points stored"] * 2
    assert all(p.stat().st_size > 0 for p in plots.save(fig, tmp_path, "empty"))


def test_the_theme_is_seaborns_paper_whitegrid_theme():
    """plots.THEME and plots.COLOR_CODES are what ``seaborn.set_theme(context="paper", style="whitegrid",
    font_scale=1.1)`` sets, every rcParam and every one-letter colour code, but the default colour map
    (seaborn's "rocket", which only seaborn registers; every image here names its own map) and the font
    list, whose first entry is the font matplotlib ships (the same glyphs on every machine)."""
    import matplotlib
    import pytest

    sns = pytest.importorskip("seaborn")
    named = matplotlib.colors.get_named_colors_mapping()
    codes_before = {c: named[c] for c in "bgrmyck"}
    try:
        def plain() -> None:  # matplotlib's own rcParams and colour codes
            matplotlib.rcdefaults()
            for c in "bgrmyck":
                named[c] = matplotlib.colors.BASE_COLORS[c]

        with matplotlib.rc_context():
            plain()
            sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
            theirs, their_codes = dict(matplotlib.rcParams), {c: matplotlib.colors.to_rgb(c) for c in "bgrmyck"}
        with matplotlib.rc_context():
            plain()
            plots.setup_style()
            ours, our_codes = dict(matplotlib.rcParams), {c: matplotlib.colors.to_rgb(c) for c in "bgrmyck"}
    finally:
        for c, v in codes_before.items():
            named[c] = v
    own = {"figure.dpi", "savefig.dpi", "savefig.bbox", "legend.frameon"}  # set on top of the theme
    differ = sorted(k for k in theirs if k not in own and theirs[k] != ours[k])
    assert differ == ["font.sans-serif", "image.cmap"], differ
    assert ours["font.sans-serif"] == ["DejaVu Sans", *(f for f in theirs["font.sans-serif"] if f != "DejaVu Sans")]
    assert our_codes == their_codes != {c: matplotlib.colors.BASE_COLORS[c] for c in "bgrmyck"}


def test_figure_text_is_drawn_in_the_font_matplotlib_ships_on_any_machine():
    """The theme's sans-serif font resolves to DejaVu Sans, which every matplotlib installs, even where Arial
    is installed too (seaborn's own list would pick Arial there): here a font manager that also holds an
    "Arial" (another file under that name, as a Mac or Windows machine has one)."""
    import copy
    import dataclasses

    import matplotlib
    from matplotlib import font_manager

    props = font_manager.FontProperties(family=["sans-serif"])  # a list: a bare name is read as a pattern
    serif = font_manager.findfont(font_manager.FontProperties(family=["DejaVu Serif"]))
    with_arial = copy.copy(font_manager.fontManager)
    with_arial.ttflist = [*with_arial.ttflist,
                          dataclasses.replace(next(f for f in with_arial.ttflist if f.fname == serif), name="Arial")]
    with matplotlib.rc_context():
        plots.setup_style()
        assert Path(with_arial.findfont(props, fallback_to_default=False)).name == "DejaVuSans.ttf"
        matplotlib.rcParams["font.sans-serif"] = ["Arial", "DejaVu Sans"]  # seaborn's order: Arial wins
        assert with_arial.findfont(props, fallback_to_default=False) == serif
