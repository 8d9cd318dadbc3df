"""The authors' reference trajectories, in the shape our results tables have,
so a claim or figure can put their value beside ours at the same step:
their two logged runs (reference/authors-logs.csv) and their own code rerun
with two fresh seeds for 6k steps (reference/authors-code-seeds.csv, bimodal
only). Sources in reference/README.md."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import UserError
from .results import EXACT_FLOATS

LOG_PATH = Path(__file__).resolve().parent.parent / "reference" / "authors-logs.csv"
CODE_SEEDS_PATH = LOG_PATH.with_name("authors-code-seeds.csv")
LOGGED = "authors' log"  # the label of the logged run among the reference runs
# our metric (and protocol) <- the log's column; the log's step n is after n updates,
# our evaluation at step s is after s updates: we match s = n - 1 (off by one update)
COLUMNS = {"loss_train": "loss_mean_250", "r2_all": "r2_all_same_sample", "mcc": "mcc"}


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UserError(f"an authors' reference table is missing: {path} (it ships with the repository; "
                        "restore it with git checkout reference/)")
    df = pd.read_csv(path, **EXACT_FLOATS)
    df["step"] = df["step"] - 1
    df["lambda_sorted"] = [np.sort(np.array(s.split(), dtype=float)) for s in df["lambda_hat"]]
    return df


@lru_cache(maxsize=1)
def authors_log() -> pd.DataFrame:
    """One row per logged step and setting: ``step`` (our step convention),
    the log's columns, and ``lambda_sorted`` (the learned Lambda^ sorted
    ascending: encoder dims carry no latent order, so ranks are compared)."""
    return _read(LOG_PATH)


@lru_cache(maxsize=1)
def authors_code_seeds() -> pd.DataFrame:
    """The authors' code rerun with fresh seeds: the log's columns plus ``seed``."""
    return _read(CODE_SEEDS_PATH)


def reference_runs(setting: str) -> dict[str, pd.DataFrame]:
    """Every reference run of ``setting``, label -> its series by step: the
    logged run first, then the code's fresh seeds (bimodal only)."""
    out = {LOGGED: authors_series(setting)}
    code = authors_code_seeds()
    for seed, run in code[code["setting"] == setting].groupby("seed"):
        out[f"authors' code, seed {seed}"] = run.set_index("step").sort_index()
    return out


def authors_series(setting: str) -> pd.DataFrame:
    return authors_log()[authors_log()["setting"] == setting].set_index("step").sort_index()
