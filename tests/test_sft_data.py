"""Day 22's instruction set (data/sft/grounded_sft.jsonl) keeps the test split out: no test question, and no test
question's gold sentence or second sentence (nor a sentence sharing half its content words), appears in it; and it
is what scripts/train_grounded_lora.py builds (deterministic)."""

import importlib.util
import json

import pytest

from helpers import corpus, facts
from helpers.config import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "train_grounded_lora.py"


@pytest.fixture(scope="module")
def sft():
    spec = importlib.util.spec_from_file_location("train_grounded_lora", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows(sft):
    return sft.load_data()


def test_set_has_answers_and_refusals(rows, sft):
    refusals = [r for r in rows if not r["has_fact"]]
    assert len(rows) >= 300, f"only {len(rows)} examples"
    assert 0.15 <= len(refusals) / len(rows) <= 0.35, f"{len(refusals)} refusals of {len(rows)}"
    assert all(r["answer"] == sft.REFUSAL for r in refusals), "a context without the fact must get the fixed refusal"
    assert all(r["answer"] != sft.REFUSAL for r in rows if r["has_fact"]), "an answerable example is refused"


def test_answers_quote_their_context(rows):
    quoted = [r for r in rows if r["has_fact"] and not r["source"].startswith("dev:")]
    assert quoted and all(corpus.normalise(r["answer"]) in corpus.normalise(r["context"]) for r in quoted), \
        "a course-written answer is not a sentence of its context"


def test_no_test_question_or_evidence(rows, sft):
    text = "\n".join(corpus.normalise(r["question"] + "\n" + r["context"] + "\n" + r["answer"]) for r in rows)
    sources = {r["source"].split(":", 1)[1] for r in rows if r["source"].startswith("dev:")}
    for q in corpus.load_questions("test"):
        assert q["id"] not in sources, f"test question {q['id']} is a source of the set"
        assert corpus.normalise(q["question"]) not in text, f"test question {q['id']} appears in the set"
        for _, sentence in corpus.gold_refs(q):
            assert corpus.normalise(sentence) not in text, f"the evidence of test question {q['id']} appears"


def test_no_sentence_overlaps_test_evidence(rows, sft):
    protected = [sft.content_words(s) for s in sft.protected_sentences()]
    assert len(protected) >= 60, "the test split's gold sentences were not found"
    for r in rows:
        for part in (r["context"], r["answer"]):
            body = "\n".join(line for line in part.splitlines() if not line.startswith("title: "))
            for sentence in facts.split_sentences(body):
                assert not sft.overlaps(sentence, protected), f"{r['source']}: {sentence[:80]!r} overlaps test evidence"


def test_only_dev_questions_are_sources(rows):
    dev = {q["id"] for q in corpus.load_questions("dev")}
    ids = {r["source"].split(":", 1)[1] for r in rows if r["source"].startswith("dev:")}
    assert ids and ids <= dev, f"non-dev sources: {sorted(ids - dev)[:5]}"


def test_file_is_what_the_script_builds(rows, sft):
    assert [json.dumps(r, sort_keys=True) for r in sft.build()] == [json.dumps(r, sort_keys=True) for r in rows], \
        "data/sft/grounded_sft.jsonl differs from `python scripts/train_grounded_lora.py --build-data`"
