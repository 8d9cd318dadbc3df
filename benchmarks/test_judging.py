"""Speed of judging every claim on the committed quick results, over training
(what `python reproduce.py --plot-only` and `--check` spend most of their time
on), against the plain way written here.

    pytest benchmarks/test_judging.py --benchmark-only

``plain`` re-filters the whole table for each (claim, step) pair and again
for each seed, and judges the pooled rows at every step whatever the rule;
``fast`` is :func:`aninfonce.verdicts.evaluate_claims`. Both give the same
history, step for step, and the benchmark asserts it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aninfonce import report, verdicts

RESULTS = Path(__file__).resolve().parent.parent / "results"
PROFILE = "quick"


@pytest.fixture(scope="module")
def committed(bound_quick):
    exps = bound_quick[0]
    return exps, report.load_all(exps, RESULTS, PROFILE)


def _passes(claim, rows: pd.DataFrame) -> bool:
    return bool(verdicts._check(claim, rows)[0])


def plain_histories(exps, frames) -> dict[str, tuple]:
    """Claim id -> its (step, fraction of seeds passing, rule verdict) at every judged step, each
    step's rows filtered from the whole table, the settle test run for each claim."""
    out = {}
    for exp in exps:
        df = frames[exp.id]
        if exp.judge_whole_grids and not df.empty:
            complete, _ = verdicts.complete_seeds(exp, df, PROFILE)
            df = df[pd.to_numeric(df["seed"]).isin(complete)]
        for claim in exp.claims:
            if PROFILE not in claim.profiles or df.empty:
                continue
            read = claim.reads(df) if claim.reads is not None else df
            verdicts.breaches(exp, read)
            if read.empty or verdicts._check(claim, read)[0] is None:
                continue
            seeds = sorted(pd.to_numeric(read["seed"]).unique().tolist())
            steps = sorted(pd.to_numeric(read["step"]).dropna().unique().tolist())
            if (claim.judged_steps or exp.judged_steps) == "final":
                steps = steps[-1:]
            history = []
            for s in steps:
                upto = read[read["step"] <= s]
                _passes(claim, upto)  # the pooled check, run whatever the rule
                if claim.rule == "pooled":
                    k = len(seeds) if _passes(claim, upto) else 0
                else:
                    k = sum(_passes(claim, upto[upto["seed"] == seed]) for seed in seeds)
                ok = k == len(seeds) if claim.rule in ("all", "pooled") else k > len(seeds) / 2
                history.append((int(s), k / len(seeds), ok))
            out[claim.id] = tuple(history)
    return out


def fast_histories(exps, frames) -> dict[str, tuple]:
    return {v.claim: v.history for v in verdicts.evaluate_claims(exps, frames, PROFILE) if v.history}


@pytest.mark.parametrize("impl", ["plain", "fast"])
def test_judge_committed_quick_claims(compare, committed, impl):
    exps, frames = committed
    fn = {"plain": plain_histories, "fast": fast_histories}[impl]
    histories = compare("judge quick claims over training", impl, lambda: fn(exps, frames),
                        rounds=1 if impl == "plain" else 3, warmup=0, rows=sum(len(df) for df in frames.values()))
    assert histories, "no claim was judged over training"
    if impl == "plain":
        assert histories == fast_histories(exps, frames)
