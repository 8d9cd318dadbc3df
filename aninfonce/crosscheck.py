"""The paper profile beside quick: where a claim is decided (PASS or FAIL) in
the `paper` profile -- the authors' own schedule at their full length --
the quick report shows that verdict beside its own, and says in so many
words where the two disagree. A quick schedule shortened or calibrated to
stand in for the paper's must agree with it; a disagreement is shown, never
hidden. Reads results tables only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .table_markup import markdown
from .verdicts import Verdict

DECIDED = ("PASS", "FAIL")


def pair_up(quick: list[Verdict], paper: list[Verdict]) -> list[tuple[Verdict, Verdict]]:
    """(quick verdict, paper verdict) for every claim the paper profile has
    decided, in the quick report's order."""
    decided = {v.claim: v for v in paper if v.status in DECIDED}
    return [(q, decided[q.claim]) for q in quick if q.claim in decided]


def agreement(q: Verdict, p: Verdict) -> str:
    if q.status not in DECIDED:
        return f"quick {q.status}: not comparable yet"
    return "agree" if q.status == p.status else "**DISAGREE**"


# Rows of paper-profile runs a GPU lease cut off before their last step: kept as measured, never results
CUT_OFF_ROWS = Path(__file__).resolve().parent.parent / "benchmarks" / "measured" / "h200-2026-11-29" / "fig2-paper-cut-off-rows.csv.gz"


def cut_off_table(path: Path = CUT_OFF_ROWS) -> str:
    """Figure 2's held-out R^2 at the last step the cut-off paper runs logged
    (descriptive: those runs never finished, so no verdict reads them)."""
    if not Path(path).exists():
        return ""
    df = pd.read_csv(path, low_memory=False)
    df = df[(df["protocol"] == "held-out") & df["metric"].isin(["r2_content", "r2_style"])]
    last = df[df["step"] == df.groupby("run_key")["step"].transform("max")]
    table = last.pivot_table(index=["lam2", "loss", "seed", "step"], columns="metric", values="value").reset_index()
    lines = [f"Not results: the rows of the paper runs a GPU lease cut off (`{Path(path).name}`), Figure 2 at the "
             "last step each logged; they say where the authors' schedule stands near its end, and no verdict "
             "reads them.", ""]
    rows = [(f"{r.lam2:g}", r.loss, r.seed, f"{r.step:,}", f"{r.r2_content:.3f}", f"{r.r2_style:.3f}")
            for r in table.sort_values(["lam2", "loss", "seed"]).itertuples()]
    return "\n".join(lines + [markdown(rows, ["Λ2", "loss", "seed", "step", "R² content", "R² style"])])


def section(quick: list[Verdict], paper: list[Verdict] | None, paper_results: str) -> str:
    """The report section "The paper profile beside quick"."""
    lines = ["## The paper profile beside quick", ""]
    cut = cut_off_table()
    if paper is None:
        return "\n".join(lines + [f"No paper-profile results ({paper_results} is missing or empty).", "", cut]).rstrip()
    pairs = pair_up(quick, paper)
    counts = {s: sum(v.status == s for v in paper) for s in ("PASS", "FAIL", "NOT SETTLED", "NO DATA")}
    lines.append(f"The `paper` profile trains the authors' schedule at its full length (GPU leases; "
                 f"`{paper_results}`). Its claims: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    if not pairs:
        lines += ["", "No claim is decided in the paper profile yet, so nothing can be compared.", "", cut]
        return "\n".join(lines).rstrip()
    disagree = [q.claim for q, p in pairs if q.status in DECIDED and q.status != p.status]
    lines += ["", f"Decided in the paper profile: {len(pairs)} claim(s); quick agrees on "
              f"{sum(agreement(q, p) == 'agree' for q, p in pairs)}, disagrees on {len(disagree)}"
              + (f" ({', '.join(f'`{c}`' for c in disagree)})" if disagree else "") + ".", ""]
    rows = [(f"`{q.claim}`", f"{q.status} ({q.seeds_passed} of {q.n_seeds})",
             f"{p.status} ({p.seeds_passed} of {p.n_seeds}; {p.measured.split(' — ')[0]})", agreement(q, p))
            for q, p in pairs]
    lines.append(markdown(rows, ["claim", "quick", "paper", ""]))
    return "\n".join(lines + ["", cut]).rstrip()
