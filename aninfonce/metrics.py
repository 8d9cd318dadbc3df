"""Identifiability metrics (docs/PROTOCOL.md §4.2): linear R^2 by factor group and
MCC after Hungarian matching."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.linear_model import LinearRegression

from .protocols import HELD_OUT, SAME_SAMPLE  # noqa: F401  (how an R^2 was fitted and scored; every CSV row names one)


def r2_per_dim(features_fit: np.ndarray, z_fit: np.ndarray, features_score: np.ndarray, z_score: np.ndarray) -> np.ndarray:
    """R^2 of a linear regression from features to each true latent dim."""
    reg = LinearRegression().fit(features_fit, z_fit)
    pred = reg.predict(features_score)
    resid = ((z_score - pred) ** 2).sum(0)
    total = ((z_score - z_score.mean(0)) ** 2).sum(0)
    return 1.0 - resid / total


def r2_by_group(r2: np.ndarray, content: np.ndarray) -> dict[str, float]:
    """Mean R^2 over content dims, style dims and all dims (NaN for an empty group)."""
    style = ~content
    return {
        "r2_content": float(r2[content].mean()) if content.any() else float("nan"),
        "r2_style": float(r2[style].mean()) if style.any() else float("nan"),
        "r2_all": float(r2.mean()),
    }


def mcc(features: np.ndarray, z: np.ndarray) -> float:
    """Mean absolute Pearson correlation after matching feature dims to latent
    dims one-to-one with the Hungarian algorithm [code]."""
    return hungarian_match(features, z)[0]


def hungarian_match(features: np.ndarray, z: np.ndarray) -> tuple[float, np.ndarray]:
    """MCC and the matching itself: ``match[i]`` is the latent dim paired with
    feature dim i. An encoder identifies latents at best up to permutation, so
    per-dim quantities of the encoder (its learned Lambda^) are compared with
    the truth through this matching, never by position."""
    d = z.shape[1]
    corr = np.corrcoef(features.T, z.T)[: features.shape[1], features.shape[1]:]
    corr = np.nan_to_num(np.abs(corr))
    rows, cols = linear_sum_assignment(-corr)
    match = np.full(features.shape[1], -1)
    match[rows] = cols
    return float(corr[rows, cols].sum() / d), match


def identifiability_rows(fit_h: np.ndarray, fit_z: np.ndarray, score_h: np.ndarray, score_z: np.ndarray,
                         content: np.ndarray) -> list[dict]:
    """CSV rows of one evaluation: R^2 by group and per dim under both
    protocols (fit on ``fit_*``; score on the same sample or on ``score_*``),
    then MCC and the Hungarian matching (``match/i`` = latent dim of feature i)."""
    rows: list[dict] = []
    for protocol, (h_s, z_s) in {SAME_SAMPLE: (fit_h, fit_z), HELD_OUT: (score_h, score_z)}.items():
        r2 = r2_per_dim(fit_h, fit_z, h_s, z_s)
        rows += [{"metric": k, "value": v, "protocol": protocol} for k, v in r2_by_group(r2, content).items()]
        rows += [{"metric": f"r2/{i}", "value": float(v), "protocol": protocol} for i, v in enumerate(r2)]
    mcc_value, match = hungarian_match(fit_h, fit_z)
    rows.append({"metric": "mcc", "value": mcc_value, "protocol": SAME_SAMPLE})
    rows += [{"metric": f"match/{i}", "value": float(j), "protocol": SAME_SAMPLE} for i, j in enumerate(match)]
    rows += block_rows(fit_h, fit_z, score_h, score_z, content, match)
    return rows


def block_rows(fit_h: np.ndarray, fit_z: np.ndarray, score_h: np.ndarray, score_z: np.ndarray,
               content: np.ndarray, match: np.ndarray) -> list[dict]:
    """The direct test of block-wise identifiability: each block's latents
    (content, style) predicted linearly from the encoder dims that the
    Hungarian matching assigns to that block ("own") and from all the other
    encoder dims ("other"). A code identified up to a block-orthogonal map
    scores own ~ 1 and other ~ 0; a code that mixes the blocks scores both in
    between, whatever its R^2 from all dims. Mean R^2 over the block's
    latents; rows ``r2_block/<block>/<own|other>`` under both protocols.
    Nothing when a block is empty (e.g. an isotropic Lambda)."""
    blocks = {"content": content, "style": ~content}
    if not all(m.any() for m in blocks.values()):
        return []
    dim_block = np.array([content[j] if j >= 0 else False for j in match])  # encoder dim -> matched to content?
    rows = []
    for name, mask in blocks.items():
        own = dim_block == (name == "content")
        for source, dims in (("own", own), ("other", ~own)):
            if not dims.any():
                continue
            for protocol, (h_s, z_s) in {SAME_SAMPLE: (fit_h, fit_z), HELD_OUT: (score_h, score_z)}.items():
                r2 = r2_per_dim(fit_h[:, dims], fit_z[:, mask], h_s[:, dims], z_s[:, mask])
                rows.append({"metric": f"r2_block/{name}/{source}", "value": float(r2.mean()), "protocol": protocol})
    return rows
