"""Figure 5: augmentation overlap, a schematic [caption].

Large concentration means the positive conditionals of two anchors do not
overlap: no positive of one anchor looks like a positive of another, so the
contrastive task is solved without relating the anchors' neighbourhoods to
each other ("augmentation overlap" missing).

Drawn from the code's own sampler (:func:`aninfonce.latents.sample_positive`,
the rejection sampler of docs/PROTOCOL.md §2 with Lambda = kappa * I) on the
circle S^1 and the sphere S^2, with a few evenly spread anchors [recon: the
paper's drawing is not available]. The study measures the overlap that the
drawing shows, so a claim can check it:

    overlap(kappa) = fraction of positives z+ ~ p(. | z_a) whose nearest
                     anchor is not z_a, averaged over the anchors,

with 6 anchors 60 degrees apart on the circle and the 6 octahedron vertices
(90 degrees apart) on the sphere. No training is involved.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import claims as C
from ..plots import empty_panel, no_data, run_caption, save, ticks_at
from ..registry import Analysis, Claim, ClaimResult, register
from ..table_markup import markdown

KAPPAS = (5.0, 25.0, 100.0, 400.0)  # [recon] the style (5) and content (25) precisions of Figure 2, then larger
SMALL, LARGE = KAPPAS[0], KAPPAS[-1]  # the two conditionals the schematic draws
DRAW_SAMPLES = 150  # positives per anchor in the drawing


def _overlap(df: pd.DataFrame, d: int) -> pd.Series:
    sel = df[(df["metric"] == "overlap") & (df["d"].astype(int) == d)]
    return sel.groupby("kappa")["value"].mean().sort_index()


# ---------------------------------------------------------------- claims
# Margins set before the quick run: "no overlap" = fewer than 1 in 1000
# positives nearer another anchor; "overlap" = at least 5 in 100.
NONE, SOME = 1e-3, 0.05


def _no_overlap_large(df: pd.DataFrame) -> ClaimResult:
    vals = {d: _overlap(df, d).get(LARGE, math.nan) for d in (2, 3)}
    # strict ("fewer than") at the printed 4 decimals; a missing value (NaN) fails
    ok = all(math.isfinite(v) and not C.at_least(v, NONE, places=4) for v in vals.values())
    return ClaimResult(ok,
                       ", ".join(f"{'circle' if d == 2 else 'sphere'}: overlap at kappa {LARGE:g} = {v:.4f}" for d, v in vals.items()))


def _overlap_small_and_falls(df: pd.DataFrame) -> ClaimResult:
    parts, ok = [], True
    for d in (2, 3):
        c = _overlap(df, d)
        rho = C.spearman(c.index.to_numpy(float), c.to_numpy())
        ok &= C.at_least(c.get(SMALL, 0.0), SOME, places=4) and C.at_most(rho, -0.9, places=2)
        parts.append(f"{'circle' if d == 2 else 'sphere'}: " + ", ".join(f"kappa {k:g}: {v:.4f}" for k, v in c.items())
                     + f" (Spearman {rho:.2f})")
    return ClaimResult(bool(ok), "; ".join(parts))


CLAIMS = (
    Claim("fig5.no-overlap-at-large-kappa", f"at kappa = {LARGE:g} fewer than {NONE:g} of the positives lie nearer "
          "another anchor (circle and sphere)", _no_overlap_large,
          short=f"no augmentation overlap at κ = {LARGE:g}"),
    Claim("fig5.overlap-at-small-kappa", f"at kappa = {SMALL:g} at least {SOME:g} of the positives lie nearer another "
          "anchor, and the overlap falls as kappa grows (Spearman <= -0.9)", _overlap_small_and_falls,
          short=f"augmentations overlap at κ = {SMALL:g}, less as κ grows"),
)


# ---------------------------------------------------------------- figure
ANCHOR_COLORS = plt.cm.tab10(np.arange(6))


def drawn_points(df: pd.DataFrame, runs: Path | None, d: int, kappa: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(anchors, positives per anchor) the seed-0 run at (d, kappa) drew for the schematic and wrote beside
    its rows (``<run key>.points.npz``); None when it did not."""
    sel = df[(df["seed"].astype(int) == 0) & (df["d"].astype(int) == d) & np.isclose(df["kappa"].astype(float), kappa)]
    for key in sel["run_key"].astype(str).unique():
        where = Path(runs) / f"{key}.points.npz" if runs is not None else None
        if where is not None and where.exists():
            with np.load(where, allow_pickle=False) as f:
                return f["anchors"], f["positives"]
    return None


def plot_fig5(df: pd.DataFrame, out: Path, profile: str, runs: Path | None = None) -> list[Path]:
    """The drawing shows the points the seed-0 runs at the smallest and largest kappa drew from the code's
    sampler (fixed seed, a few hundred points: a schematic, not a result); panel E plots the CSV's overlap."""
    if df.empty:
        return no_data(out, "fig5", "no Figure 5 results yet")
    fig = plt.figure(figsize=(19, 4.2))
    for i, kappa in enumerate((SMALL, LARGE)):
        ax = fig.add_subplot(1, 5, 1 + i)
        drawn = drawn_points(df, runs, 2, kappa)
        if drawn is None:
            empty_panel(ax, f"{'AB'[i]}  circle, κ = {kappa:g}", "no drawn points stored (rerun fig5)")
            continue
        a, zp = drawn
        t = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(t), np.sin(t), color="0.8", lw=1, zorder=0)
        for k in range(len(a)):
            ax.scatter(zp[k, :, 0], zp[k, :, 1], s=6, color=ANCHOR_COLORS[k], alpha=0.5)
            ax.scatter(a[k, 0], a[k, 1], s=70, marker="*", color=ANCHOR_COLORS[k], edgecolor="k", zorder=3)
        ax.set(aspect="equal", xticks=[], yticks=[], title=f"{'AB'[i]}  circle, κ = {kappa:g}")
    for i, kappa in enumerate((SMALL, LARGE)):
        ax = fig.add_subplot(1, 5, 3 + i, projection="3d")
        drawn = drawn_points(df, runs, 3, kappa)
        if drawn is None:
            empty_panel(ax, f"{'CD'[i]}  sphere, κ = {kappa:g}", "no drawn points stored (rerun fig5)")
            continue
        a, zp = drawn
        u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 30), np.linspace(0, np.pi, 15))
        ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", lw=0.4)
        for k in range(len(a)):
            ax.scatter(zp[k, :, 0], zp[k, :, 1], zp[k, :, 2], s=4, color=ANCHOR_COLORS[k], alpha=0.6)
            ax.scatter(*a[k].tolist(), s=60, marker="*", color=ANCHOR_COLORS[k], edgecolor="k")
        ax.set(xticks=[], yticks=[], zticks=[], title=f"{'CD'[i]}  sphere, κ = {kappa:g}")
        ax.set_box_aspect((1, 1, 1))
    ax = fig.add_subplot(1, 5, 5)
    for d, style in ((2, "o-"), (3, "s--")):
        c = _overlap(df, d)
        ax.plot(c.index, c.values, style, color="k", label="circle, 6 anchors 60° apart" if d == 2 else "sphere, 6 anchors 90° apart")
    ax.set(xscale="log", xlabel="concentration κ", ylabel="fraction of positives nearer another anchor",
           title="E  augmentation overlap")
    ticks_at(ax, df.loc[df["metric"] == "overlap", "kappa"].astype(float))
    ax.legend(fontsize=8)
    fig.suptitle(f"Figure 5 — positive conditionals p(z+ | anchor ★) from the code's sampler (profile: {profile})", y=1.02)
    fig.tight_layout()
    return save(fig, out, "fig5", run_caption("Positive samples around anchors at small and large κ, and the fraction "
                                              "lying nearer another anchor (augmentation overlap)", df, profile))


def reference_fig5(df: pd.DataFrame) -> str:
    ang = {d: df[(df["metric"] == "angle_deg") & (df["d"].astype(int) == d)].groupby("kappa")["value"].mean() for d in (2, 3)}
    ov = {d: _overlap(df, d) for d in (2, 3)}
    rows = [(f"{k:g}", f"{ov[2].get(k, math.nan):.4f}", f"{ang[2].get(k, math.nan):.1f}°",
             f"{ov[3].get(k, math.nan):.4f}", f"{ang[3].get(k, math.nan):.1f}°") for k in sorted(ov[2].index)]
    return "\n".join(["The paper's Figure 5 is a schematic without numbers; ours:", "",
                      markdown(rows, ["κ", "circle: overlap", "circle: mean angle to anchor", "sphere: overlap",
                                      "sphere: mean angle"])])


register(Analysis(
    id="fig5", title="Schematic: augmentation overlap vanishes at large concentration", paper_ref="Figure 5",
    source="recon", plot=plot_fig5, claims=CLAIMS, reference=reference_fig5,
    notes="Sampler [code] (Gaussian step of precision κ per dim, rejection band 0.1, projection), Λ = κ I. Drawing and "
          "statistic [recon]: 6 anchors (circle: 60° apart; sphere: octahedron vertices, 90° apart); overlap = "
          "fraction of an anchor's positives whose nearest anchor is another one, 20,000 positives per anchor. "
          "The drawn points are sampled with a fixed seed by the seed-0 runs and stored beside their rows; the overlap "
          "curve comes from the CSV.",
))
