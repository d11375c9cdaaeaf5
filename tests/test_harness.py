"""The evaluation harness (helpers.harness, Days 29-30): per-item retrieval metrics with nDCG, answer
scoring on scripted answers, the agent failure taxonomy, baselines and regression flags, and the
golden-set hygiene checks on planted faults. No model is loaded (no LLM, no embedder)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import corpus, harness


def _node(doc: str, text: str) -> object:
    from llama_index.core.schema import NodeWithScore, TextNode

    return NodeWithScore(node=TextNode(text=text, metadata={"doc": doc}), score=1.0)


class _Fixed:
    def __init__(self, nodes: list) -> None:
        self.nodes = nodes

    def retrieve(self, query: str) -> list:
        return self.nodes


@pytest.fixture(scope="module")
def single() -> dict:
    return next(q for q in corpus.load_questions("dev", types="fact") if q["gold_sentence"])


@pytest.fixture(scope="module")
def multi() -> dict:
    return corpus.load_questions("dev", types="multi_hop")[0]


def test_retrieval_items_rank_and_ndcg(single, multi):
    gold = _node(single["doc"], single["gold_sentence"])
    other = _node(single["doc"], "Nothing relevant here.")
    row = harness.retrieval_items(_Fixed([other, other, gold]), [single], k=5)[0]
    assert row["hit"] == 1.0 and math.isclose(row["rr"], 1 / 3) and math.isclose(row["ndcg"], 1 / math.log2(4))
    missed = {**row, "hit": 0.0, "rr": 0.0, "ndcg": 0.0, "recall": 0.0}
    assert harness.retrieval_items(_Fixed([other]), [single], k=5)[0] == missed
    # a second node covering the same sentence earns nothing; both gold sentences at the top give 1
    assert math.isclose(harness.ndcg([gold.node, gold.node], single, 5), 1.0)
    first = _node(multi["doc"], multi["gold_sentence"])
    second = _node(multi["second"]["doc"], multi["second"]["gold_sentence"])
    assert math.isclose(harness.ndcg([first, second], multi, 5), 1.0)
    half = (1 / math.log2(2)) / (1 / math.log2(2) + 1 / math.log2(3))
    assert math.isclose(harness.ndcg([first, other], multi, 5), half)
    unanswerable = corpus.load_questions("dev", types="unanswerable")
    assert harness.retrieval_items(_Fixed([gold, other]), [single, *unanswerable], k=2)[0]["id"] == single["id"]
    with pytest.raises(ValueError):
        harness.ndcg([gold], unanswerable[0], 5)


def test_answer_items_support_exact_abstention():
    qs = [{"id": "a", "type": "fact", "answer": "16 tokens."},
          {"id": "b", "type": "unanswerable", "answer": "not in the handbook"},
          {"id": "c", "type": "summary", "answer": "it works in parallel."}]
    right = harness.answer_items(qs, ["The default block size is 16 tokens.", "Not in the handbook.", "anything"])
    assert right[0] == {"id": "a", "type": "fact", "abstained": 0.0, "exact": 0.0, "support": 1.0, "correct": 1.0}
    assert right[1]["correct"] == 1.0 and right[1]["exact"] == 1.0 and "support" not in right[1]
    assert "correct" not in right[2]  # no number or name in the gold answer: nothing to check
    wrong = harness.answer_items(qs, ["32 tokens", "The block size is 16.", ""])
    assert wrong[0]["support"] == 0.0 and wrong[0]["correct"] == 0.0 and wrong[1]["correct"] == 0.0
    assert harness.answer_items(qs[:1], ["16 tokens"])[0]["exact"] == 1.0
    assert harness.answer_items(qs[:1], ["The context does not say; 16 tokens maybe."])[0]["correct"] == 0.0
    table = harness.abstention_table(right)
    assert table["abstain_unanswerable"] == 1.0 and table["abstain_answerable"] == 0.0 and table["n_answerable"] == 2
    with pytest.raises(ValueError):
        harness.answer_items(qs, ["one answer"])


def test_judge_auc():
    out = harness.judge_auc([0.9, 0.8, 0.3, 0.2, 0.7, 0.1], [True, True, False, False, True, False], n_boot=200)
    assert out["auc"] == 1.0 and out["n"] == 6 and out["correct"] == 3
    assert harness.judge_auc([0.1, 0.9, 0.5, 0.5], [True, False, True, False], n_boot=200)["auc"] == 0.125


TASK = {"id": "t", "tools": ["search_handbook", "calculator"]}
SEARCH = {"step": 1, "action": "search_handbook", "observation": "[kv] ...", "answer": None}
CALC = {"step": 2, "action": "calculator", "observation": "512", "answer": None}
DONE = {"step": 3, "action": "final_answer", "observation": None, "answer": "512 KiB"}


@pytest.mark.parametrize("trace, correct, label", [
    ([SEARCH, CALC, DONE], True, None),
    ([CALC, DONE], False, "wrong tool"),
    ([CALC, SEARCH, DONE], False, "wrong tool"),
    ([SEARCH, dict(CALC, observation="Error: ValueError: no"), DONE], False, "bad arguments"),
    ([SEARCH, CALC, dict(DONE, answer="500")], False, "wrong final answer"),
    ([SEARCH, CALC, {"step": "cap", "action": "stop", "answer": None}], False, "no answer"),
    ([SEARCH, {"step": 2, "action": "cut off", "answer": None}], False, "cut off"),
])
def test_failure_taxonomy(trace, correct, label):
    assert harness.failure(trace, TASK, correct) == label


def test_agent_items():
    rows = harness.agent_items([TASK, TASK], [[SEARCH, CALC, DONE], [CALC, DONE]], [True, False])
    assert rows[0] == {"id": "t", "type": "agent", "success": 1.0, "tools_match": 1.0, "steps": 3.0, "failure": None}
    assert rows[1]["tools_match"] == 0.0 and rows[1]["steps"] == 2.0 and rows[1]["failure"] == "wrong tool"


def test_run_roundtrip_and_regression_flags(tmp_path):
    ids = [f"q{i}" for i in range(40)]
    base = harness.Run.from_items("base", [{"id": i, "type": "fact", "hit": 1.0, "steps": 2.0, "note": "x"}
                                           for i in ids])
    assert set(base.items) == {"hit", "steps"}  # strings are not metrics
    path = tmp_path / "baseline.json"
    base.save(path)
    loaded = harness.Run.load(path)
    assert loaded.items == base.items and loaded.means() == {"hit": 1.0, "steps": 2.0}
    same = {r["metric"]: r for r in harness.compare(loaded, base)}
    assert not any(r["flagged"] for r in same.values()) and same["hit"]["n"] == 40
    worse = harness.Run.from_items("worse", [{"id": i, "hit": float(k % 2), "steps": 4.0} for k, i in enumerate(ids)])
    flags = {r["metric"]: r["flagged"] for r in harness.compare(worse, base)}
    assert flags == {"hit": True, "steps": True}  # fewer hits, more steps: both worse
    better = harness.Run.from_items("better", [{"id": i, "hit": 1.0, "steps": 1.0} for i in ids])
    assert not any(r["flagged"] for r in harness.compare(better, base))
    one_miss = harness.Run.from_items("one", [{"id": i, "hit": float(k != 0)} for k, i in enumerate(ids)])
    assert not harness.compare(one_miss, base)[0]["flagged"]  # one question is noise, not a regression
    partial = harness.Run.from_items("partial", [{"id": i, "hit": 1.0} for i in ids[:10]] + [{"id": "new", "hit": 0.0}])
    row = harness.compare(partial, base)[0]
    assert row["n"] == 10 and row["missing"] == 31
    with pytest.raises(ValueError):
        harness.Run.from_items("dup", [{"id": "a", "hit": 1.0}, {"id": "a", "hit": 0.0}])
    assert "hit" not in harness.Run.from_items("nan", [{"id": "a", "hit": float("nan")}]).items


def test_hygiene_on_planted_faults():
    qs = corpus.load_questions()
    assert harness.exact_duplicates(qs) == [] and harness.answerability(qs) == []
    dev0 = next(q for q in qs if q["split"] == "dev" and q["gold_sentence"])
    planted = qs + [dict(dev0, id="copy", split="test", question=dev0["question"].upper() + " ?"),
                    dict(dev0, id="gone", gold_sentence="No such sentence in any file."),
                    {"id": "mislabel", "type": "unanswerable", "question": "?", "doc": "01_transformers.md",
                     "gold_sentence": "x", "second": None, "split": "dev"}]
    assert (dev0["id"], "copy") in harness.exact_duplicates(planted)
    assert any(r["dev"] == [dev0["id"]] and "copy" in r["test"] for r in harness.leakage(planted))
    assert {r["id"] for r in harness.answerability(planted)} == {"gone", "mislabel"}
    vectors = np.eye(3)[[0, 0, 1]] * 1.0
    trio = [dict(q, split=s) for q, s in zip(qs[:3], ("dev", "test", "dev"))]
    pairs = harness.near_duplicates(trio, vectors, 0.9)
    assert [(p["a"], p["b"], p["where"]) for p in pairs] == [(trio[0]["id"], trio[1]["id"], "across")]
