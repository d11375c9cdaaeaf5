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


def test_timer_and_best_of_measure_real_time():
    import time

    with helpers.timer() as t:
        time.sleep(0.05)
    assert 0.05 <= t.seconds < 0.5, "the timer must measure the sleep it wrapped"
    delays = iter([0.06, 0.02, 0.04])
    assert 0.02 <= best_of(lambda: time.sleep(next(delays)), repeat=3) < 0.035, "best_of keeps the fastest run"


def test_expect_checks_the_claim_of_the_model_that_ran(capsys, monkeypatch):
    standin = helpers.resolve("microsoft/Phi-3-mini-4k-instruct")
    original = helpers.resolve("sentence-transformers/all-MiniLM-L6-v2")
    def said(**kwargs: object) -> str:
        helpers.expect(**kwargs)
        return capsys.readouterr().out

    assert "holds" in said(info=standin, standin=True, original=False, message="small model fails")
    with pytest.raises(AssertionError, match="small model fails .*stand-in"):
        helpers.expect(standin, standin=False, original=True, message="small model fails")
    with pytest.raises(AssertionError, match="original"):
        helpers.expect(original, standin=True, original=False, message="big model succeeds")
    assert "no checked claim" in said(info=original, standin=False, message="only the stand-in is checked")
    monkeypatch.setenv("LLMC_SMOKE_ORIGINAL", "1")
    assert "NOT MET" in said(info=original, standin=True, original=False, message="smoke run")


def test_plot_attention_labels_axes():
    ax = helpers.plot_attention(np.eye(3), ["a", "b", "c"], title="t")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_title() == "t"
    with pytest.raises(ValueError, match="do not match"):
        helpers.plot_attention(np.eye(3), ["a", "b"])


def test_plot_attention_grid_shares_one_colour_scale():
    weights = np.random.rand(6, 4, 4)
    weights[2] *= 0.1  # a diffuse head must look pale, not be stretched to its own maximum
    fig = helpers.plot_attention_grid(weights, list("wxyz"), ncols=4)
    images = [a.images[0] for a in fig.axes if a.images]
    assert len(images) == 6
    assert {im.get_clim() for im in images} == {(0.0, weights.max())}, "one colour bar needs one scale"


def test_setup_prints_profile_and_models(capsys):
    from helpers import models

    models._ANNOUNCED.clear()
    run = helpers.setup(day=0, models=["gpt2"])
    out = capsys.readouterr().out
    assert run["profile"] == "offline" and "Day 0 | profile: offline" in out
    assert out.count("STAND-IN") == 1
    helpers.load_causal_lm("gpt2")
    assert "STAND-IN" not in capsys.readouterr().out, "the stand-in note is printed once per process"
