"""What several analyses share: the report's "Lost directions" of an entry's
runs, and the sentence that follows a plan's deviations from the authors'
model and optimiser."""

from __future__ import annotations

import pandas as pd

from ..frames import final_step, indexed_metric
from ..table_markup import markdown

# after the deviations a manifest lists for a synthetic entry (report: "Not the authors' model or optimiser")
SEE_AUTHORS = ("The verdicts below are about this setting; see `authors-logs` for the authors' own setting and "
               "`calibration` for the search for a compressed schedule that stands for it.")


LOST_DIM = 0.9  # a latent dim "lost" by a run that should keep it (the calibration's admission criterion)


def lost_directions(df: pd.DataFrame) -> str:
    """Per AnInfoNCE run at its last step: whether some latent dim has a
    held-out R^2 below LOST_DIM (the lost-direction plateau), with
    the per-dim R^2 of each run that has one. "" for entries without per-dim
    rows. InfoNCE runs are left out: losing style is what the paper says they do."""
    if df.empty or not df["metric"].astype(str).str.startswith("r2/").any():
        return ""
    sel = df[df["loss"] == "aninfonce"] if "loss" in df else df
    last = final_step(sel)
    dims = indexed_metric(last[last["protocol"] == "held-out"], "r2")
    if dims.empty:
        return ""
    table = dims.pivot_table(index="run_key", columns="dim", values="value").round(2)  # judged as printed
    lost = table[(table < LOST_DIM).any(axis=1)]
    head = (f"Lost directions (per-dim held-out R² < {LOST_DIM} at the last step) in AnInfoNCE runs: "
            f"**{len(lost)} of {len(table)}**.")
    if lost.empty:
        return head
    varying = [c for c in ("lam2", "lambda_kind", "hard_beta", "d", "kappa", "batch", "terms_used", "seed")
               if c in sel and sel[c].astype(str).nunique() > 1]
    spec = sel.drop_duplicates("run_key").set_index("run_key")
    if varying:  # rows in the order of the grid's variables, seeds last (not in run-key order)
        def grid_order(key):  # numbers by value, anything else (e.g. an ensemble's term list) as text
            vals = [spec.at[key, c] for c in varying]
            nums = [pd.to_numeric(v, errors="coerce") for v in vals]
            return tuple((0, n, "") if pd.notna(n) else (1, 0.0, str(v)) for n, v in zip(nums, vals))
        lost = lost.loc[sorted(lost.index, key=grid_order)]
    # an isotropic Lambda = lam2 * I (fig4) is a concentration kappa: named as the entry's text names it
    isotropic = "lambda_kind" in spec and (spec["lambda_kind"].astype(str) == "isotropic").all()
    label = {"lam2": "κ"} if isotropic else {}
    rows = []
    for key, row in lost.iterrows():
        name = ", ".join(f"{label.get(c, c)}={spec.at[key, c]}" for c in varying) or key
        cells = ("–" if pd.isna(v) else f"**{v:.2f}**" if v < LOST_DIM else f"{v:.2f}" for v in row)  # –: no such dim
        rows.append([name, *cells])
    return "\n".join([head, "", markdown(rows, ["run", *(f"R² dim {d}" for d in table.columns)])])
