"""Shared figure style and helpers, how a figure is written (:func:`save`) and
the pool that draws many at once (:class:`Drawing`). Each figure's own drawing
code lives with its experiment; every figure is a pure function of a results
table."""

from __future__ import annotations

import multiprocessing
import pickle
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .cores import usable_cores  # noqa: E402
from .frames import final_step, indexed_metric, metric, with_latent  # noqa: E402

# one colour per loss, fixed across every figure
LOSS_COLORS = {
    "aninfonce": "#c0392b",
    "infonce-learned": "#2471a3",
    "infonce-tau1": "#7fb3d5",
    "infonce-tau0.1": "#1b2631",
}
LOSS_LABELS = {
    "aninfonce": "AnInfoNCE",
    "infonce-learned": "InfoNCE (learned scalar)",
    "infonce-tau1": "InfoNCE (τ = 1)",
    "infonce-tau0.1": "InfoNCE (τ = 0.1)",
}
GROUP_STYLES = {"r2_content": "-", "r2_style": "--"}
GROUP_LABELS = {"r2_content": "content", "r2_style": "style"}


# The figures' theme: seaborn's "whitegrid" style in its "paper" context at font scale 1.1, with its "deep"
# colour cycle and colour codes (what ``seaborn.set_theme(context="paper", style="whitegrid", font_scale=1.1)``
# sets), written out so that drawing needs no seaborn: importing it (and the scipy.stats it loads) cost every
# reading pass 0.4 s before its first figure. The paper context scales seaborn's base sizes by 0.8 (fonts by
# 0.8 x 1.1); tests/test_plots.py checks both against seaborn's own theme. Two entries differ from it: the
# default colour map (seaborn's "rocket", which only seaborn registers; each image here names its map) and
# the font: seaborn lists Arial first, so a machine that has it (macOS, Windows) would draw other glyphs
# than one that has not; DejaVu Sans, which matplotlib ships, comes first here, so every machine draws the
# same text and regenerating an unchanged figure gives the same bytes.
_LINES, _FONTS = 0.8, 0.8 * 1.1
THEME = {
    "axes.axisbelow": True, "axes.edgecolor": ".8", "axes.grid": True, "axes.labelcolor": ".15",
    "axes.linewidth": 1.25 * _LINES, "grid.color": ".8", "text.color": ".15",
    "xtick.color": ".15", "ytick.color": ".15", "xtick.bottom": False, "ytick.left": False,
    "lines.solid_capstyle": "round", "patch.edgecolor": "w", "patch.force_edgecolor": True,
    "font.sans-serif": ["DejaVu Sans", "Arial", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "font.size": 12 * _FONTS, "axes.labelsize": 12 * _FONTS, "axes.titlesize": 12 * _FONTS,
    "legend.title_fontsize": 12 * _FONTS, "legend.fontsize": 11 * _FONTS,
    "xtick.labelsize": 11 * _FONTS, "ytick.labelsize": 11 * _FONTS,
    "lines.linewidth": 1.5 * _LINES, "lines.markersize": 6 * _LINES, "patch.linewidth": 1 * _LINES,
    "xtick.major.width": 1.25 * _LINES, "ytick.major.width": 1.25 * _LINES,
    "xtick.minor.width": 1 * _LINES, "ytick.minor.width": 1 * _LINES,
    "xtick.major.size": 6 * _LINES, "ytick.major.size": 6 * _LINES,
    "xtick.minor.size": 4 * _LINES, "ytick.minor.size": 4 * _LINES,
    "axes.prop_cycle": matplotlib.cycler(color=[matplotlib.colors.to_rgb(c) for c in (
        "#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
        "#64B5CD")]),
}


# the one-letter colour codes, as the theme shades them ("k" a near-black): "b", "g", "r", "m", "y", "c" are
# the "deep" palette's first six hues in that order
COLOR_CODES = dict(zip("bgrmyck", [matplotlib.colors.to_rgb(c) for c in (
    "#4C72B0", "#55A868", "#C44E52", "#8172B3", "#CCB974", "#64B5CD")] + [(0.1, 0.1, 0.1)]))


def setup_style() -> None:
    plt.rcParams.update(THEME)
    named = matplotlib.colors.get_named_colors_mapping()
    for code, rgb in COLOR_CODES.items():
        named[code] = rgb  # one by one: setting an item clears matplotlib's cache of converted colours
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 160, "savefig.bbox": "tight", "legend.frameon": False})


def save(fig: plt.Figure, out_dir: Path, name: str, caption: str = "") -> list[Path]:
    """Write PNG and PDF, with ``caption`` as one grey line under the figure
    (:func:`run_caption`); return both paths. Both files are cut to one box,
    measured once (:func:`tight_box`): the PNG is the same bytes as
    ``bbox_inches="tight"`` writes; the PDF's page is that box too, which is
    up to 0.17 in wider or 0.10 in narrower than its own tight box (its
    unhinted text measures differently), within the 0.1-in padding."""
    if caption:
        # just below everything drawn (a figure legend under the panels included), so it covers nothing;
        # the tight bounding box of the saved file grows to hold it
        bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
        fig.text(0.5, bottom - 0.01, caption, ha="center", va="top", fontsize=8, color="0.3")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = figure_paths(out_dir, name)
    box = tight_box(fig)
    # the figure's layout is final (a tight_layout left a placeholder engine, which would make each
    # savefig draw the whole figure once more before writing it)
    fig.set_layout_engine(None)
    for p in paths:
        # no creation date in the PDF: regenerating an unchanged figure leaves git clean
        fig.savefig(p, bbox_inches=box, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


def figure_paths(out_dir: Path, name: str) -> list[Path]:
    """The files :func:`save` writes for a figure called ``name``."""
    return [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]


def tight_box(fig: plt.Figure) -> matplotlib.transforms.Bbox:
    """The box (inches) ``savefig(png, bbox_inches="tight")`` cuts to: everything drawn, measured at the
    PNG's dpi, plus the padding. Measuring it once and passing it to both formats saves what a tight
    save costs per file: one whole draw without output, then the measurement."""
    dpi = plt.rcParams["savefig.dpi"]
    kept = fig.dpi
    fig.dpi = kept if dpi == "figure" else dpi
    try:
        box = fig.get_tightbbox(fig.canvas.get_renderer())
    finally:
        fig.dpi = kept
    return box.padded(plt.rcParams["savefig.pad_inches"])


def run_caption(what: str, df: pd.DataFrame, profile: str) -> str:
    """A figure's one-line caption: what it shows, then the profile, the training steps and the seeds
    of the runs in ``df``, so the PNG says what it is without REPORT.md beside it."""
    parts = [f"Profile {profile}"]
    steps = pd.to_numeric(df["steps"], errors="coerce").dropna() if "steps" in df else pd.Series(dtype=float)
    if len(steps):
        lo, hi = int(steps.min()), int(steps.max())
        parts.append(f"{lo:,} steps" if lo == hi else f"{lo:,}-{hi:,} steps")
    if "seed" in df and df["seed"].notna().any():
        seeds = sorted(pd.to_numeric(df["seed"]).dropna().astype(int).unique())
        parts.append(f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))})")
    return f"{what}. " + ", ".join(parts) + "."


def ticks_at(ax, values, axis: str = "x") -> None:
    """Major ticks at exactly the swept ``values`` (a log axis would show 10^1, 10^2), no minor ticks."""
    values = sorted({float(v) for v in values})
    getattr(ax, f"set_{axis}ticks")(values, [f"{v:g}" for v in values])
    getattr(ax, f"{axis}axis").set_minor_locator(matplotlib.ticker.NullLocator())


def no_data(out_dir: Path, name: str, why: str) -> list[Path]:
    fig, ax = plt.subplots(figsize=(4, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True)
    return save(fig, out_dir, name)


def empty_panel(ax, title: str, why: str) -> None:
    """A panel of a multi-panel figure whose runs have not landed yet: its title and why, no axes."""
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    text = getattr(ax, "text2D", ax.text)  # a 3-D panel (Figure 5's sphere) writes flat text with text2D
    text(0.5, 0.5, why, ha="center", va="center", wrap=True, color="0.4", transform=ax.transAxes)


def unsettled_handle() -> plt.Line2D:
    """Legend entry for :func:`hollow_unsettled`'s hollow points."""
    return plt.Line2D([], [], ls="", marker="o", ms=7, mfc="white", mec="0.3", label="hollow: training not settled")


def hollow_unsettled(ax, rows: pd.DataFrame, mean: pd.Series, x: str, unsettled: frozenset[str], color="0.3",
                     marker: str = "o") -> bool:
    """Draw hollow each point of ``mean`` (indexed by ``x``) whose ``rows``
    include a run in ``unsettled`` (its end value is still on its way); a
    settled point stays filled. Returns whether it drew one."""
    moving = rows.groupby(x)["run_key"].agg(lambda keys: bool(set(keys.astype(str)) & unsettled))
    if not moving.any():
        return False
    ax.scatter(mean.index[moving.to_numpy()], mean.to_numpy()[moving.to_numpy()], s=42, marker=marker,
               facecolors="white", edgecolors=color, linewidths=1.3, zorder=5)
    return True


def seed_markers(ax, rows: pd.DataFrame, x: str, color, marker: str = "o") -> None:
    """Every row's ``value`` against column ``x`` as a small translucent dot: each seed beside the mean
    line, so a split between seeds stays visible (hollow is kept for unsettled points)."""
    ax.scatter(rows[x].astype(float), rows["value"], s=10, marker=marker, color=color, linewidths=0, alpha=0.45,
               zorder=3)


def r2_groups_against(ax, df: pd.DataFrame, losses, x: str = "lam2", unsettled: frozenset[str] = frozenset()) -> bool:
    """Final-step content (solid, circles) and style (dashed, squares) R^2
    against column ``x``: the mean over seeds as a line, and every seed as
    its own small translucent dot (so a split between seeds stays visible), one
    colour per loss. A point with a run in ``unsettled`` (run keys whose
    training had not settled: verdicts.unsettled_runs) is drawn hollow, so an
    end-of-training value that is still on its way is not read as the loss's
    verdict. Returns whether it drew one."""
    last = final_step(df)
    ringed = False
    for loss in losses:
        for group in GROUP_STYLES:
            rows = metric(last[last["loss"] == loss], group)
            mean = rows.groupby(x)["value"].mean()
            marker = "o" if group == "r2_content" else "s"
            ax.plot(mean.index, mean.values, color=LOSS_COLORS[loss], ls=GROUP_STYLES[group], marker=marker, ms=4)
            if rows["seed"].nunique() > 1:
                seed_markers(ax, rows, x, LOSS_COLORS[loss], marker)
            ringed |= hollow_unsettled(ax, rows, mean, x, unsettled, LOSS_COLORS[loss], marker)
    ax.set_xscale("log")
    return ringed


def lambda_traces_by_latent(df: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Learned Lambda^ over training, one column per *latent* dim, mean over
    runs: each run's encoder dims are mapped to latents by that run's own
    final Hungarian matching (``match/i`` rows), so seeds whose encoders
    permute the latents differently are averaged correctly. Returns the
    traces and whether a matching was used (False: position = latent, for
    runs that logged no matching)."""
    lam = indexed_metric(df, "lambda_hat")
    if lam.empty:
        return pd.DataFrame(), False
    match = indexed_metric(final_step(df), "match")
    if match.empty:
        return lam.groupby(["dim", "step"])["value"].mean().unstack(0), False
    lam = with_latent(lam, match)
    lam["latent"] = lam["latent"].fillna(lam["dim"]).astype(int)
    return lam.groupby(["latent", "step"])["value"].mean().unstack(0), True


def plot_lambda_traces(ax, df: pd.DataFrame, true, legend_loc: str = "best", legend_below: bool = False) -> None:
    """Learned Lambda^ (solid) in latent order and the true Lambda (dashed),
    one colour per latent dim [caption of Figures 2D / 3C-D], with a colour
    key beside the panel naming each latent dim and its true Lambda. The line
    legend goes at ``legend_loc``, or under the panel with ``legend_below``
    (where every corner holds a trace)."""
    traces, matched = lambda_traces_by_latent(df)
    if traces.empty:
        ax.text(0.5, 0.5, "no runs", ha="center", transform=ax.transAxes)
        return
    colors = plt.cm.viridis([0.9 * j / max(len(true) - 1, 1) for j in range(len(true))])
    for j in traces.columns:
        ax.plot(traces.index, traces[j], color=colors[j], lw=1.5)
    for j, t in enumerate(true):
        ax.axhline(t, color=colors[j], ls="--", lw=1)
    ax.plot([], [], "k-", label="learned Λ̂ᵢ")
    ax.plot([], [], "k--", label="true Λᵢ")
    where = dict(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2) if legend_below else dict(loc=legend_loc)
    ax.legend(fontsize=8, **where)
    n = len(true)
    key = ax.figure.colorbar(matplotlib.cm.ScalarMappable(matplotlib.colors.BoundaryNorm(np.arange(n + 1) - 0.5, n),
                                                          matplotlib.colors.ListedColormap(colors)),
                             ax=ax, ticks=range(n), pad=0.02, fraction=0.05, aspect=30)
    key.ax.set_yticklabels([f"{j}: {t:.3g}" for j, t in enumerate(true)], fontsize=7)
    key.set_label("latent dim: true Λ (colour)" + ("" if matched else "; dims unmatched, none logged"), fontsize=8)


def tile(images: np.ndarray, cols: int) -> np.ndarray:
    """(N, 28, 28) uint8 -> one (rows*30, cols*30) image with 2-px white gaps."""
    n = len(images)
    rows = -(-n // cols)
    out = np.full((rows * 30, cols * 30), 255, dtype=np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        out[r * 30 + 1:r * 30 + 29, c * 30 + 1:c * 30 + 29] = 255 - im  # dark digits on white
    return out


# ---------------------------------------------------------------- drawing many figures at once
def drawing_jobs(jobs: int | None, n_tasks: int) -> int:
    """How many processes draw ``n_tasks`` figures: ``jobs``, or (None) one per CPU core this process may
    use; never more than there are figures. One (this process) where a worker could not be forked: after
    training, torch is loaded, whose thread pool a fork could copy mid-lock, and a spawned worker would
    re-import the calling script (a script without a main guard would run again) and pay the reading
    half's imports, seconds against the few figures of a training command."""
    if not _can_fork():
        return 1
    return max(1, min(jobs or usable_cores(), n_tasks))


def _travels(fn: Callable) -> bool:
    """Whether ``fn`` can be sent to a worker process (a module-level function can; a lambda cannot)."""
    try:
        pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _can_fork() -> bool:
    """Whether workers can be forked: where the reading half runs alone (``--plot-only``, ``--check``), they
    start in milliseconds with it already imported, and no torch thread pool is there to copy mid-lock. Not
    on macOS, whose system libraries may not survive a fork (Python spawns there by default): one process
    reads and draws everything there, as on Windows, which cannot fork."""
    return (sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()
            and "torch" not in sys.modules)


class Drawing:
    """A pool of forked workers, each with the figure style set, that draws figures (or reads whole entries,
    ``aninfonce.reading``) while its caller goes on: ``submit(fn, *args)`` hands back a future at once and a
    worker runs it. With one process (:func:`drawing_jobs`), or for a function that cannot travel to a worker
    (a lambda), the call waits and runs here when its ``result()`` is asked for, so one process draws in the
    order the results are collected. A figure is a pure function of its arguments: its files are the same
    bytes whichever process drew it."""

    def __init__(self, jobs: int | None, n_tasks: int):
        n = drawing_jobs(jobs, n_tasks)
        self._pool = (ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork"), initializer=setup_style)
                      if n > 1 else None)

    def submit(self, fn: Callable, *args) -> Future | _Later:
        if self._pool is not None and _travels(fn):
            return self._pool.submit(fn, *args)
        return _Later(fn, args)

    def __enter__(self) -> Drawing:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)


class _Later:
    """A call run here on the first ``result()`` (the serial stand-in for a pool's future)."""

    def __init__(self, fn: Callable, args: tuple):
        self._call: tuple[Callable, tuple] | None = (fn, args)
        self._value: Any = None

    def result(self) -> Any:
        if self._call is not None:
            fn, args = self._call
            self._value, self._call = fn(*args), None
        return self._value
