"""The pipeline-comparison statistics: intervals that shrink with n and say 'untested' honestly."""
from __future__ import annotations

import pytest

from helpers import stats


def test_a_clear_difference_is_shown_and_noise_is_not():
    better = stats.paired_bootstrap([1] * 40 + [0] * 10, [0] * 40 + [0] * 10)
    assert better.shown and better.verdict == "A better" and better.low > 0.6
    coin = stats.paired_bootstrap([1, 0, 1, 0, 1, 0], [0, 1, 0, 1, 1, 0])
    assert not coin.shown and coin.verdict == "untested" and coin.low < 0 < coin.high
    worse = stats.paired_bootstrap([0] * 30, [1] * 30)
    assert worse.verdict == "B better" and "n=30" in str(worse)


def test_one_question_in_54_is_not_a_result():
    a = [1] * 20 + [0] * 34
    b = [1] * 19 + [0] * 35
    assert not stats.paired_bootstrap(a, b).shown, "a difference of one question in 54 must stay untested"


def test_wilson_interval_and_bad_input():
    low, high = stats.proportion_interval(1, 5)
    assert 0.03 < low < 0.05 and 0.6 < high < 0.65
    assert stats.proportion_interval(0, 5)[0] == 0.0 and stats.proportion_interval(5, 5)[1] == 1.0
    with pytest.raises(ValueError, match="equally long"):
        stats.paired_bootstrap([1, 0], [1])
    with pytest.raises(ValueError):
        stats.proportion_interval(6, 5)


def test_fast_auc_equals_sklearn_with_ties():
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from helpers.evaluation import auc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200).astype(bool)
    x = np.round(rng.random(200) + 0.3 * y, 1)  # rounded: many ties
    assert abs(auc(y, x) - roc_auc_score(y, x)) < 1e-12
    with pytest.raises(ValueError, match="both positive and negative"):
        auc([True, True], [0.1, 0.2])
