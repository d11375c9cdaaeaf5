"""One evaluation harness for the course's pipelines (Day 29; Day 30's report card uses it too).

Every scorer returns **per-item** rows (one per question or task, keyed by its id), so two runs can
be compared item by item with a paired bootstrap; the means are only summaries of those rows.

    from helpers import harness
    items = harness.retrieval_items(retriever, corpus.load_questions("test"), k=5)   # hit, rr, ndcg
    items += harness.answer_items(questions, answers)                                # support, exact, abstained
    run = harness.Run.from_items("direct k=5", items)
    run.save(harness.BASELINE)                            # data/evaluation/baseline.json
    harness.compare(run, harness.Run.load(harness.BASELINE))   # per metric: diff [CI], flagged drop?

Built on `rag.retrieval_metrics` (relevance rule, hit and rank), `facts.fact_support` (gold-fact
support), `evaluation.auc` (judge validity) and `stats.paired_bootstrap` (intervals); nothing here
calls an LLM, so it is unit-tested with scripted answers (tests/test_harness.py).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import DATA_DIR
from .corpus import doc_text, gold_refs, normalise
from .facts import fact_support, facts
from .rag import covers, retrieval_metrics
from .stats import paired_bootstrap

BASELINE = DATA_DIR / "evaluation" / "baseline.json"
ABSTAIN_RE = re.compile(r"not in the (handbook|context)|(does not|doesn't|cannot|can't|do not|don't) (say|know|answer|"
                        r"mention|contain|provide)|no information|not (mentioned|stated|given)", re.I)
DECIMALS = 6  # per-item values are stored (and compared) rounded to this many decimals
FAILURES = ("cut off", "no answer", "wrong tool", "bad arguments", "wrong final answer")


# --------------------------------------------------------------------------- retrieval
class _Recorder:
    """Wraps a retriever and keeps what it returned per query (so nDCG needs no second retrieval)."""

    def __init__(self, retriever: Any) -> None:
        self.retriever, self.seen = retriever, {}

    def retrieve(self, query: str) -> list[Any]:
        self.seen[query] = self.retriever.retrieve(query)
        return self.seen[query]


def ndcg(nodes: Sequence[Any], question: dict, k: int) -> float:
    """nDCG@k with one unit of gain per gold sentence, earned at the first rank that covers it
    (`rag.covers`); a second node covering the same sentence earns nothing. The ideal ranking puts
    one node per gold sentence first, so a one-sentence question scores 1 / log2(1 + rank)."""
    refs = gold_refs(question)
    if not refs:
        raise ValueError(f"{question['id']}: an unanswerable question has no nDCG")
    found: set[int] = set()
    dcg = 0.0
    for rank, node in enumerate(nodes[:k], start=1):
        new = {j for j, (doc, sentence) in enumerate(refs) if j not in found and covers(node, doc, sentence)}
        dcg += len(new) / math.log2(rank + 1)
        found |= new
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(refs), k) + 1))
    return dcg / ideal


def retrieval_items(retriever: Any, questions: Iterable[dict], k: int = 5) -> list[dict]:
    """Per answerable question: hit@k (0/1), reciprocal rank (0 when missed), recall of gold
    sentences and nDCG@k, from `rag.retrieval_metrics` plus `ndcg`. Unanswerable questions are skipped."""
    questions = list(questions)
    recorder = _Recorder(retriever)
    rows = retrieval_metrics(recorder, questions, k=k)["per_question"]
    by_id = {q["id"]: q for q in questions}
    return [{"id": r["id"], "type": r["type"], "hit": float(r["rank"] is not None),
             "rr": 1 / r["rank"] if r["rank"] else 0.0, "recall": r["recall"],
             "ndcg": ndcg(recorder.seen[by_id[r["id"]]["question"]], by_id[r["id"]], k)} for r in rows]


# --------------------------------------------------------------------------- answers
def squad_normalise(text: str) -> str:
    """SQuAD-style answer normalisation: lower case, punctuation and articles dropped, spaces collapsed."""
    text = re.sub(r"[^\w\s.]|(?<!\d)\.|\.(?!\d)", " ", text.lower())  # keep decimal points
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def abstained(answer: str) -> bool:
    """True when `answer` declines to answer ("not in the handbook", "the context does not say", ...)."""
    return bool(ABSTAIN_RE.search(answer or "")) or not (answer or "").strip()


def answer_items(questions: Sequence[dict], answers: Sequence[str]) -> list[dict]:
    """Per question: `support` (share of the gold answer's numbers and names that the answer states,
    `facts.fact_support(gold, answer)`), `correct` (support 1 and no abstention), `exact` (SQuAD exact
    match) and `abstained`. For unanswerable questions `correct` means it abstained; support and
    correct are left out where the gold answer states no number or name (nothing to check)."""
    if len(questions) != len(answers):
        raise ValueError(f"{len(questions)} questions but {len(answers)} answers")
    rows = []
    for q, a in zip(questions, answers):
        a = a or ""
        off = abstained(a)
        row = {"id": q["id"], "type": q["type"], "abstained": float(off),
               "exact": float(squad_normalise(a) == squad_normalise(q["answer"]))}
        if q["type"] == "unanswerable":
            row["correct"] = float(off)
        elif facts(q["answer"]):  # a gold answer with no number or name cannot be checked this way
            row["support"] = fact_support(q["answer"], a)
            row["correct"] = float(row["support"] == 1.0 and not off)
        rows.append(row)
    return rows


def abstention_table(rows: Sequence[dict]) -> dict[str, float]:
    """Abstention on unanswerable questions (should be 1) and on answerable ones (should be 0)."""
    un = [r["abstained"] for r in rows if r["type"] == "unanswerable"]
    ans = [r["abstained"] for r in rows if r["type"] != "unanswerable"]
    return {"abstain_unanswerable": sum(un) / len(un) if un else float("nan"), "n_unanswerable": len(un),
            "abstain_answerable": sum(ans) / len(ans) if ans else float("nan"), "n_answerable": len(ans)}


def judge_auc(scores: Sequence[float], correct: Sequence[bool], n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Is the judge valid? ROC AUC of judge `scores` for `correct` answers (0.5: blind, 1: perfect),
    with a 95 % bootstrap interval (resamples with a single class are skipped); `evaluation.auc`."""
    import numpy as np

    from .evaluation import auc

    y, x = np.asarray(correct, dtype=bool), np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    samples = (rng.integers(0, len(y), len(y)) for _ in range(n_boot))
    boots = [auc(y[i], x[i]) for i in samples if 0 < y[i].sum() < len(i)]
    low, high = np.percentile(boots, [2.5, 97.5])
    return {"auc": auc(y, x), "low": float(low), "high": float(high), "n": len(y), "correct": int(y.sum())}


# --------------------------------------------------------------------------- agents
def tool_sequence(trace: Sequence[dict], final: str = "final_answer") -> list[str]:
    """The tools a trace called, in order (the final answer and non-calls left out)."""
    return [s["action"] for s in trace if s.get("action") not in (None, final, "stop", "cut off")]


def failure(trace: Sequence[dict], task: dict, correct: bool) -> str | None:
    """The failure class of an agent run (None when it succeeded), first match wins:
    "cut off" (a call ended at the token limit), "no answer" (the step cap stopped it),
    "wrong tool" (the tools called are not the task's `tools`, in order), "bad arguments"
    (a tool answered with an error), "wrong final answer" (right tools, clean calls, wrong answer).
    A trace is a list of steps with `action`, `observation` and `answer` (Day 12's loop)."""
    if correct:
        return None
    if any(s.get("action") == "cut off" for s in trace):
        return "cut off"
    if not any(s.get("answer") for s in trace if s.get("action") == "final_answer"):
        return "no answer"
    if tool_sequence(trace) != list(task["tools"]):
        return "wrong tool"
    if any(str(s.get("observation") or "").startswith("Error") for s in trace):
        return "bad arguments"
    return "wrong final answer"


def agent_items(tasks: Sequence[dict], traces: Sequence[Sequence[dict]], correct: Sequence[bool]) -> list[dict]:
    """Per task: success, tool-sequence match against the task's `tools` field, model steps, failure class."""
    return [{"id": t["id"], "type": "agent", "success": float(ok),
             "tools_match": float(tool_sequence(tr) == list(t["tools"])),
             "steps": float(sum(isinstance(s.get("step"), int) for s in tr)), "failure": failure(tr, t, ok)}
            for t, tr, ok in zip(tasks, traces, correct)]


# --------------------------------------------------------------------------- runs, baselines, regressions
@dataclass
class Run:
    """The per-item results of one pipeline: {metric: {item id: value}}, plus free-form `meta`
    (models, settings, the command that produced it)."""

    name: str
    items: dict[str, dict[str, float]]
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_items(cls, name: str, rows: Iterable[dict], meta: dict | None = None) -> Run:
        """Collect every numeric column of `rows` (dicts with an `id`) into per-metric item maps
        (NaN cells, e.g. from a DataFrame's `to_dict("records")`, mean "not scored" and are skipped)."""
        items: dict[str, dict[str, float]] = {}
        for row in rows:
            for key, value in row.items():
                if (key not in ("id", "type") and isinstance(value, (int, float)) and not isinstance(value, bool)
                        and not math.isnan(value)):  # NaN: not scored for this item (e.g. a table's empty cell)
                    if row["id"] in items.setdefault(key, {}):
                        raise ValueError(f"item {row['id']!r} appears twice for metric {key!r}")
                    items[key][row["id"]] = float(value)
        return cls(name, items, dict(meta or {}))

    def means(self) -> dict[str, float]:
        return {m: sum(v.values()) / len(v) for m, v in self.items.items()}

    def save(self, path: Path | str) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        data = {"name": self.name, "meta": self.meta, "means": {k: round(v, 4) for k, v in self.means().items()},
                "items": {m: {i: round(v, DECIMALS) for i, v in sorted(vals.items())}
                          for m, vals in sorted(self.items.items())}}
        Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path | str) -> Run:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(data["name"], data["items"], data.get("meta", {}))


def compare(current: Run, baseline: Run, metrics: Iterable[str] | None = None,
            lower_is_better: Iterable[str] = ("steps",), n_boot: int = 2000) -> list[dict]:
    """Per metric present in both runs: the mean over shared items of each, the paired bootstrap
    difference current - baseline (`stats.paired_bootstrap`), and `flagged`: True when the run is
    significantly worse (the interval excludes zero on the bad side). Items present in one run only
    are counted in `missing`, never compared."""
    worse_low = set(lower_is_better)
    out = []
    for m in metrics or sorted(set(current.items) & set(baseline.items)):
        # compare at the precision the baseline file stores, so a rerun reproduces it exactly
        cur = {i: round(v, DECIMALS) for i, v in current.items.get(m, {}).items()}
        base = {i: round(v, DECIMALS) for i, v in baseline.items.get(m, {}).items()}
        ids = sorted(set(cur) & set(base))
        if not ids:
            continue
        diff = paired_bootstrap([cur[i] for i in ids], [base[i] for i in ids], n_boot=n_boot)
        bad = diff.low > 0 if m in worse_low else diff.high < 0
        out.append({"metric": m, "n": len(ids), "baseline": sum(base[i] for i in ids) / len(ids),
                    "current": sum(cur[i] for i in ids) / len(ids), "difference": str(diff), "mean": diff.mean,
                    "low": diff.low, "high": diff.high, "flagged": bool(bad),
                    "missing": len(set(cur) ^ set(base))})
    return out


# --------------------------------------------------------------------------- golden-set hygiene
def exact_duplicates(questions: Sequence[dict]) -> list[tuple[str, str]]:
    """Pairs of question ids whose text is the same after `corpus.normalise` and punctuation removal."""
    seen: dict[str, str] = {}
    pairs = []
    for q in questions:
        key = squad_normalise(normalise(q["question"]))
        if key in seen:
            pairs.append((seen[key], q["id"]))
        else:
            seen[key] = q["id"]
    return pairs


def near_duplicates(questions: Sequence[dict], vectors: Any, threshold: float) -> list[dict]:
    """Pairs of questions whose unit-length embeddings (rows of `vectors`, same order) have cosine
    >= `threshold`, most similar first, each with `where`: "within dev", "within test" or "across"."""
    import numpy as np

    sims = np.asarray(vectors) @ np.asarray(vectors).T
    pairs = []
    for i, j in zip(*np.triu_indices(len(questions), k=1)):
        if sims[i, j] >= threshold:
            a, b = questions[i], questions[j]
            where = f"within {a['split']}" if a["split"] == b["split"] else "across"
            pairs.append({"a": a["id"], "b": b["id"], "cosine": float(sims[i, j]), "where": where,
                          "question_a": a["question"], "question_b": b["question"]})
    return sorted(pairs, key=lambda p: -p["cosine"])


def leakage(questions: Sequence[dict]) -> list[dict]:
    """Gold sentences used by a dev and a test question alike: a test item whose evidence was seen
    (and tuned on) through dev."""
    users: dict[str, list[dict]] = {}
    for q in questions:
        for _, sentence in gold_refs(q):
            users.setdefault(normalise(sentence), []).append(q)
    return [{"gold_sentence": s, "dev": [q["id"] for q in qs if q["split"] == "dev"],
             "test": [q["id"] for q in qs if q["split"] == "test"]}
            for s, qs in users.items() if {q["split"] for q in qs} >= {"dev", "test"}]


def answerability(questions: Sequence[dict]) -> list[dict]:
    """Per question: whether its labels are consistent. Answerable: every gold sentence occurs in its
    handbook file (`corpus.normalise`d). Unanswerable: no gold document, section or sentence.
    Returns the questions that fail, with the reason."""
    bad = []
    for q in questions:
        if q["type"] == "unanswerable":
            if q.get("doc") or q.get("gold_sentence") or q.get("second"):
                bad.append({"id": q["id"], "reason": "unanswerable but has gold evidence"})
            continue
        refs = gold_refs(q)
        if not refs:
            bad.append({"id": q["id"], "reason": "answerable but has no gold sentence"})
        for doc, sentence in refs:
            if normalise(sentence) not in normalise(doc_text(doc)):
                bad.append({"id": q["id"], "reason": f"gold sentence not found in {doc}"})
    return bad
