"""helpers.bm25: Day 6's from-scratch BM25 retriever, on a toy corpus scored by hand."""
from __future__ import annotations

import math

import pytest
from llama_index.core.schema import TextNode

from helpers.bm25 import BM25Retriever, tokenize

TOY = ["the cat sat", "the dog sat on the dog", "a bird"]


def _nodes(texts=TOY):  # type: ignore[no-untyped-def]
    return [TextNode(id_=f"n{i}", text=t, metadata={"title": "Toy"}) for i, t in enumerate(texts)]


def test_tokenize_lowercases_and_keeps_single_characters():
    assert tokenize("A k1=1.5, Top_K!") == ["a", "k1", "1", "5", "top_k"]


def test_hand_computed_score():
    # "dog" occurs in 1 of 3 documents: idf = ln(1 + (3 - 1 + 0.5) / (1 + 0.5)) = ln(8/3).
    # Document n1 has 6 tokens, tf(dog) = 2; the mean length is (3 + 6 + 2) / 3 = 11/3.
    # score = idf * 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 6 / (11/3)))
    idf = math.log(8 / 3)
    expected = idf * 2 * 2.5 / (2 + 1.5 * (0.25 + 0.75 * 6 / (11 / 3)))
    scores = BM25Retriever(_nodes(), k=3).scores("dog")
    assert scores[1] == pytest.approx(expected, rel=1e-12)
    assert scores[0] == 0 and scores[2] == 0


def test_ranking_order_and_k():
    hits = BM25Retriever(_nodes(), k=2).retrieve("the dog sat")
    assert [h.node.node_id for h in hits] == ["n1", "n0"]
    assert hits[0].score > hits[1].score > 0


def test_rare_word_outweighs_common_word():
    hits = BM25Retriever(_nodes(), k=3).retrieve("the bird")
    assert hits[0].node.node_id == "n2"


def test_repeated_query_word_counts_twice():
    r = BM25Retriever(_nodes(), k=3)
    assert r.scores("dog dog")[1] == pytest.approx(2 * r.scores("dog")[1])


def test_empty_and_unknown_queries_score_zero_but_return_k():
    r = BM25Retriever(_nodes(), k=2)
    for query in ["", "zebra", "!!!"]:
        hits = r.retrieve(query)
        assert len(hits) == 2 and all(h.score == 0 for h in hits)


def test_metadata_is_not_indexed_by_default_but_can_be():
    assert BM25Retriever(_nodes(), k=1).scores("toy").max() == 0
    with_title = BM25Retriever(_nodes(), k=1, text=lambda n: n.get_content(metadata_mode="embed"))
    assert with_title.scores("toy").min() > 0


def test_custom_tokenizer_and_parameters():
    r = BM25Retriever(_nodes(), k=3, tokenize=lambda t: t.split()[-1:], k1=1.2, b=0.0)
    assert r.scores("dog")[1] > 0 and r.scores("cat")[0] == 0  # only the last word of each text (and query) counts
    assert r.k1 == 1.2 and r.b == 0.0


def test_no_nodes_is_an_error():
    with pytest.raises(ValueError):
        BM25Retriever([], k=1)
