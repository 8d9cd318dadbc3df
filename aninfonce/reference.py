"""The authors' logged trajectory (reference/authors-logs.csv, source in
reference/README.md), in the shape our results tables have, so a claim or
figure can put their value beside ours at the same step."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import UserError
from .results import EXACT_FLOATS

LOG_PATH = Path(__file__).resolve().parent.parent / "reference" / "authors-logs.csv"
# our metric (and protocol) <- the log's column; the log's step n is after n updates,
# our evaluation at step s is after s updates: we match s = n - 1 (off by one update)
COLUMNS = {"loss_train": "loss_mean_250", "r2_all": "r2_all_same_sample", "mcc": "mcc"}


@lru_cache(maxsize=1)
def authors_log() -> pd.DataFrame:
    """One row per logged step and setting: ``step`` (our step convention),
    the log's columns, and ``lambda_sorted`` (the learned Lambda^ sorted
    ascending: encoder dims carry no latent order, so ranks are compared)."""
    if not LOG_PATH.exists():
        raise UserError(f"the authors' reference log is missing: {LOG_PATH} (it ships with the repository; "
                        "restore it with git checkout reference/)")
    df = pd.read_csv(LOG_PATH, **EXACT_FLOATS)
    df["step"] = df["step"] - 1
    df["lambda_sorted"] = [np.sort(np.array(s.split(), dtype=float)) for s in df["lambda_hat"]]
    return df


def authors_series(setting: str) -> pd.DataFrame:
    return authors_log()[authors_log()["setting"] == setting].set_index("step").sort_index()
