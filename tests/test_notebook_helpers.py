"""Small shared helpers: RESULT lines, timers, plots, setup."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

import helpers
from helpers.notebook import best_of


def test_report_prints_result_lines(capsys):
    out = helpers.report(speedup=3.14159, accuracy=0.975, name="x", flag=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["RESULT speedup = 3.142", "RESULT accuracy = 0.975", "RESULT name = x", "RESULT flag = True"]
    assert out["speedup"] == 3.14159


def test_timer_and_best_of():
    with helpers.timer() as t:
        sum(range(10000))
    assert 0 <= t.seconds < 1
    assert best_of(lambda: None, repeat=2) >= 0


def test_plot_attention_labels_axes():
    ax = helpers.plot_attention(np.eye(3), ["a", "b", "c"], title="t")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_title() == "t"
    with pytest.raises(ValueError, match="do not match"):
        helpers.plot_attention(np.eye(3), ["a", "b"])


def test_plot_attention_grid():
    fig = helpers.plot_attention_grid(np.random.rand(6, 4, 4), list("wxyz"), ncols=4)
    assert len([a for a in fig.axes if a.images]) == 6


def test_setup_prints_profile_and_models(capsys):
    run = helpers.setup(day=0, models=["gpt2"])
    out = capsys.readouterr().out
    assert run["profile"] == "offline" and "Day 0 | profile: offline" in out
    assert "STAND-IN" in out
