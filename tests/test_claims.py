"""The claims' building blocks that compute a statistic themselves give scipy's numbers exactly."""

import numpy as np
import pytest
import scipy.stats

from aninfonce.claims import average_ranks, spearman


def test_spearman_is_scipys_statistic_to_the_last_bit():
    """Ties included (the learned Lambda^ of a collapsed block ties); the verdicts print it, so not one bit
    may differ from ``scipy.stats.spearmanr``."""
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 10, 25):
        for _ in range(100):
            x = rng.integers(0, 4, n).astype(float) if rng.random() < 0.5 else rng.normal(size=n)
            y = rng.normal(size=n).round(1)
            assert np.array_equal(average_ranks(x), scipy.stats.rankdata(x))
            if np.ptp(x) > 0 and np.ptp(y) > 0:
                assert spearman(x, y) == scipy.stats.spearmanr(x, y).statistic


@pytest.mark.parametrize("x, y", [([1, 1, 1], [1, 2, 3]), ([1.0], [2.0]), ([1, np.nan, 3], [1, 2, 3]), ([], [])])
def test_spearman_is_nan_where_undefined(x, y):
    assert np.isnan(spearman(x, y))


def test_spearman_refuses_unpaired_values():
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])
