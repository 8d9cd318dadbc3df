"""Shared figure style and helpers. Each figure's own drawing code lives with
its experiment; every figure is a pure function of a results table."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

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


def setup_style() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 160, "savefig.bbox": "tight", "legend.frameon": False})


def save(fig: plt.Figure, out_dir: Path, name: str) -> list[Path]:
    """Write PNG and PDF; return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for p in paths:
        # no creation date in the PDF: regenerating an unchanged figure leaves git clean
        fig.savefig(p, metadata={"CreationDate": None} if p.suffix == ".pdf" else None)
    plt.close(fig)
    return paths


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
    ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True, color="0.4", transform=ax.transAxes)


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


def plot_lambda_traces(ax, df: pd.DataFrame, true, legend_loc: str = "best") -> None:
    """Learned Lambda^ (solid) in latent order and the true Lambda (dashed),
    one colour per latent dim [caption of Figures 2D / 3C-D]."""
    traces, matched = lambda_traces_by_latent(df)
    if traces.empty:
        ax.text(0.5, 0.5, "no runs", ha="center", transform=ax.transAxes)
        return
    colors = plt.cm.viridis([0.9 * j / max(len(true) - 1, 1) for j in range(len(true))])
    for j in traces.columns:
        ax.plot(traces.index, traces[j], color=colors[j], lw=1.5)
    for j, t in enumerate(true):
        ax.axhline(t, color=colors[j], ls="--", lw=1)
    ax.plot([], [], "k-", label="learned Λ̂_i")
    ax.plot([], [], "k--", label="true Λ_i")
    ax.legend(loc=legend_loc, fontsize=8, title="colour: matched latent dim" if matched else "colour: dim (no matching logged)",
              title_fontsize=7)
