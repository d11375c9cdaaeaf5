"""The data layer (helpers.corpus), retrieval metrics (helpers.rag), gold facts (helpers.facts) and the offline TruLens provider (helpers.evaluation):
corpus and golden-set loading, the relevance rule behind hit rate and MRR, agreement with
llama-index's RetrieverEvaluator, and the direction of every feedback score. Small fixtures only."""
from __future__ import annotations

import pytest

from helpers import corpus, evaluation, facts, llm, rag


@pytest.fixture(scope="module")
def dev() -> list[dict]:
    return corpus.load_questions("dev")


def _node(doc: str, text: str, start: int | None = None) -> object:
    from llama_index.core.schema import TextNode

    end = None if start is None else start + len(text)
    return TextNode(text=text, metadata={"doc": doc}, start_char_idx=start, end_char_idx=end)


class _FixedRetriever:
    """Returns the same ranked nodes for every query (enough to test the metrics)."""

    def __init__(self, nodes: list) -> None:
        from llama_index.core.schema import NodeWithScore

        self.nodes = [NodeWithScore(node=n, score=1.0 - i / 10) for i, n in enumerate(nodes)]

    def retrieve(self, query: str) -> list:
        return self.nodes


def test_documents_have_clean_metadata():
    docs = corpus.load_documents()
    names = [d.metadata["doc"] for d in docs]
    assert len(docs) == 15 and names == sorted(names) and "LICENSE.md" not in names
    rag_doc = docs[names.index("09_rag_basics.md")]
    assert rag_doc.metadata["title"] == "Retrieval-Augmented Generation Basics"
    assert rag_doc.doc_id == "09_rag_basics.md"
    embedded = rag_doc.get_content(metadata_mode="embed")
    assert "09_rag_basics.md" not in embedded and embedded.startswith("title: Retrieval")
    assert len(corpus.load_documents(distractors=False)) == 13
    assert [d.metadata["doc"] for d in corpus.load_documents(["04_kv_cache.md"])] == ["04_kv_cache.md"]
    with pytest.raises(FileNotFoundError):
        corpus.load_documents(["nope.md"])


def test_questions_filter_by_split_and_type(dev):
    every = corpus.load_questions()
    test = corpus.load_questions("test")
    assert len(dev) + len(test) == len(every) >= 140
    assert {q["split"] for q in dev} == {"dev"}
    multi = corpus.load_questions("dev", types="multi_hop")
    assert multi and all(q["type"] == "multi_hop" and q["second"] for q in multi)
    assert len(corpus.load_questions(types=["fact", "keyword"])) == sum(q["type"] in ("fact", "keyword") for q in every)
    with pytest.raises(ValueError):
        corpus.load_questions(types="trivia")
    with pytest.raises(ValueError):
        corpus.load_questions("train")
    router = corpus.load_router_questions("dev")
    assert router and {q["route"] for q in router} == {"summary", "detail"}


def test_relevance_rule_and_metrics(dev):
    q = next(q for q in dev if q["type"] == "fact")
    doc, sentence = q["doc"], q["gold_sentence"]
    text = (corpus.HANDBOOK_DIR / doc).read_text(encoding="utf-8")
    pos = text.index(sentence)
    whole = _node(doc, "Some words before.  " + sentence.replace(" ", "\n", 2))  # whitespace differs
    other_doc = _node("90_distractor_sourdough.md", sentence)  # right words, wrong document
    first_60 = _node(doc, text[pos: pos + int(0.6 * len(sentence))], start=pos)  # cut by a boundary
    first_30 = _node(doc, text[pos: pos + int(0.3 * len(sentence))], start=pos)
    assert rag.is_relevant(whole, q) and rag.is_relevant(first_60, q)
    assert not rag.is_relevant(other_doc, q) and not rag.is_relevant(first_30, q)

    unanswerable = next(q for q in dev if q["type"] == "unanswerable")
    m = rag.retrieval_metrics(_FixedRetriever([other_doc, first_30, whole]), [q, unanswerable], k=5)
    assert (m["n"], m["hit_rate"], m["mrr"]) == (1, 1.0, pytest.approx(1 / 3))
    m2 = rag.retrieval_metrics(_FixedRetriever([other_doc, first_30, whole]), [q], k=2)
    assert (m2["hit_rate"], m2["mrr"]) == (0.0, 0.0)


def test_llama_index_evaluator_agrees(dev):
    from llama_index.core.base.base_retriever import BaseRetriever

    multi = [q for q in dev if q["type"] == "multi_hop"]
    qs = [multi[0], next(q for q in multi if not {d for d, _ in corpus.gold_refs(q)} & {d for d, _ in corpus.gold_refs(multi[0])})]
    gold = [_node(d, s) for q in qs for d, s in corpus.gold_refs(q)]
    noise = [_node("91_distractor_tide_pools.md", f"Noise {i}.") for i in range(3)]
    ranked = [noise[0], gold[0], noise[1], gold[3], noise[2]]

    class Fixed(BaseRetriever):
        def _retrieve(self, query_bundle):  # type: ignore[no-untyped-def]
            return _FixedRetriever(ranked).retrieve(query_bundle.query_str)

    ours = rag.retrieval_metrics(Fixed(), qs, k=5)
    theirs = rag.llama_index_retrieval_metrics(Fixed(), qs, nodes=gold + noise)
    assert ours["hit_rate"] == theirs["hit_rate"] == 1.0
    assert ours["mrr"] == pytest.approx(theirs["mrr"]) == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert rag.expected_node_ids(gold + noise, qs[0]) == [gold[0].node_id, gold[1].node_id]


def test_no_llm_sentinel_raises():
    with pytest.raises(RuntimeError, match="No LLM is configured"):
        llm.NoLLM().complete("hello")


def test_facts_and_swaps():
    assert facts.facts("It has 4,000 steps and two heads, said BERT in Paris.") >= {"4000", "2", "bert", "paris"}
    assert facts.swap_facts("About 28.4 BLEU in 2017.") == "About 29.4 BLEU in 2017."
    assert facts.swap_facts("It came from Google Brain.", context="Google Brain wrote it") is not None
    assert facts.swap_facts("it is small.") is None
    assert facts.fact_support("Trained on 8 GPUs.", "It used eight GPUs for training.") == 1.0


def test_provider_scores_point_the_right_way(dev):
    provider = evaluation.LocalProvider()
    qs = [q for q in dev if q["type"] == "fact" and facts.swap_facts(q["answer"])][:2]
    for q in qs:
        context = corpus.gold_context(q)
        other = corpus.section_text("90_distractor_sourdough.md", _first_section("90_distractor_sourdough.md"))
        faithful = provider.groundedness(context, q["answer"])
        swapped = provider.groundedness(context, facts.swap_facts(q["answer"], context))
        assert 0.0 <= swapped < faithful <= 1.0, (q["id"], faithful, swapped)
        assert provider.context_relevance(q["question"], context) > provider.context_relevance(q["question"], other)
        assert provider.answer_relevance(q["question"], q["answer"]) > provider.answer_relevance(
            q["question"], "Sourdough needs a lively starter and a long, cool rise.")


def _first_section(doc: str) -> str:
    import re

    text = (corpus.HANDBOOK_DIR / doc).read_text(encoding="utf-8")
    return re.search(r"^## (.+)$", text, re.M).group(1).strip()


def test_calibration_uses_hard_negatives(dev):
    qs = [q for q in dev if q.get("gold_sentence")]
    q = next(q for q in qs if q["type"] == "fact")
    wrong = evaluation.wrong_section(q)
    assert wrong and wrong in corpus.doc_text(q["doc"]), "the hard negative context comes from the same document"
    assert corpus.normalise(q["gold_sentence"]) not in corpus.normalise(wrong), "a hard negative must not hold the answer"
    partner = evaluation.same_topic_partner(qs, qs.index(q))
    assert partner["doc"] == q["doc"] and partner["section"] != q["section"], partner
    with pytest.raises(ValueError):
        evaluation.calibration_pairs(dev, negatives="medium")


def test_title_only_flags_headings_not_facts():
    assert evaluation.title_only("The Base Model Configuration.")
    assert evaluation.title_only("title: The Transformer Architecture")
    assert evaluation.title_only("Office Hours", context="# Notice\n\n## Office Hours\n\nThursdays.")
    assert not evaluation.title_only("The answer is 4,000.")
    assert not evaluation.title_only("The base model used 4,000 warmup steps.")


def test_judge_validity_orders_written_answers(dev):
    qs = [q for q in dev if q["type"] == "fact"][:6]
    rows = [{**w, "question": q["question"], "context": corpus.gold_context(q), "gold": q["answer"]}
            for q in qs for w in evaluation.written_answers(q, dev)]
    assert {r["kind"] for r in rows} == {"gold", "swapped fact", "same topic", "title only"}
    scored, table = evaluation.judge_validity(evaluation.LocalProvider(), rows, n_boot=50)
    assert set(table.index) == {"Groundedness", "Answer Relevance", "Context Relevance"}
    assert table.loc["Groundedness", "auc"] > 0.7, table  # the fact check separates gold from swapped answers
    assert scored[scored.kind == "title only"]["title_only"].all() and not scored[scored.kind == "gold"]["title_only"].any()
    assert (scored[scored.kind == "gold"]["correct"]).all() and not scored[scored.kind == "same topic"]["correct"].any()


def test_stored_calibration_is_the_dev_fit(dev):
    """The constants the offline judge uses are what `calibrate` fits on dev with hard negatives
    (moved here from Day 6: a reproducibility check, not a lesson)."""
    fitted = evaluation.calibrate(dev)
    for name, (a, b) in evaluation.CALIBRATION.items():
        assert abs(a - fitted[name][0]) < 0.1 and abs(b - fitted[name][1]) < 0.1, f"{name}: stored {a, b}, dev fit {fitted[name]}"
