"""The course's reranker (scripts/train_reranker.py): its training data never sees a test question,
and the model layer names it as a stand-in."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import helpers
from helpers import config, corpus

RERANKER_ID = "cross-encoder/ms-marco-MiniLM-L-6-v2"


def _script():
    spec = importlib.util.spec_from_file_location("train_reranker", config.REPO_ROOT / "scripts" / "train_reranker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _RandomEncoder:
    """Stands in for the bi-encoder: the pairs' queries do not depend on the vectors, only the negatives do."""

    def encode(self, texts, **kwargs):
        return np.random.default_rng(len(texts)).normal(size=(len(texts), 8))


@pytest.fixture(scope="module")
def pairs():
    tr = _script()
    nodes = tr.sentence_nodes()
    vectors = np.random.default_rng(0).normal(size=(len(nodes), 8))
    return tr.dev_pairs(nodes, _RandomEncoder(), doc_vectors=vectors), tr.synthetic_pairs()


def test_training_pairs_contain_no_test_question(pairs):
    dev_pairs, synthetic = pairs
    test_questions = {corpus.normalise(q["question"]) for q in corpus.load_questions("test")}
    for query, passage, _ in dev_pairs + synthetic:
        assert corpus.normalise(query) not in test_questions, f"test question used for training: {query}"
        assert not any(t in corpus.normalise(passage) for t in test_questions), f"test question inside a passage: {passage}"
    dev_questions = {q["question"] for q in corpus.load_questions("dev")}
    assert {q for q, _, _ in dev_pairs} <= dev_questions, "dev pairs must be queried by dev questions only"


def test_every_answerable_dev_question_has_a_positive(pairs):
    dev_pairs, synthetic = pairs
    answerable = {q["question"] for q in corpus.load_questions("dev") if corpus.gold_refs(q)}
    assert {q for q, _, label in dev_pairs if label == 1.0} == answerable
    assert sum(label == 1.0 for *_, label in synthetic) > 50, "too few synthetic title -> first-sentence pairs"


def test_first_sentence_strips_markdown():
    tr = _script()
    body = "\n- The **KV cache** stores keys. It grows with the text.\n"
    assert tr.first_sentence(body) == "The KV cache stores keys."


def test_reranker_resolves_to_the_course_standin():
    info = helpers.resolve(RERANKER_ID)
    assert info.source == "stand-in" and not info.is_original
    assert "course-trained on the handbook's dev questions" in info.note
    assert "STAND-IN" in info.describe()
