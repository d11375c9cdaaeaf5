"""Retrieval metrics of the RAG days, with the course's relevance rule.

    from helpers import corpus, llm, rag
    llm.configure(llm=False)
    index = VectorStoreIndex.from_documents(corpus.load_documents())
    rag.retrieval_metrics(index.as_retriever(similarity_top_k=5), corpus.load_questions("dev"))

A retrieved node is relevant when it covers a gold sentence of the question (`covers`); hit rate,
MRR and recall follow, written from scratch and through llama-index's `RetrieverEvaluator`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .corpus import doc_text, gold_refs, normalise
from .embeddings import loaded_embedder


# --------------------------------------------------------------------------- retrieval metrics
def _node(node: Any) -> Any:
    return getattr(node, "node", node)  # NodeWithScore -> node


def covers(node: Any, doc: str, sentence: str, min_fraction: float = 0.5) -> bool:
    """The relevance rule of the course: a node is relevant to a gold sentence when it comes from
    the gold document and either (1) its text contains the sentence (normalised whitespace and case),
    or (2) its character span in the document covers at least `min_fraction` of the sentence (so
    when a chunk boundary cuts the sentence, the chunk holding the larger part counts).
    A node larger than the gold section contains the sentence, so rule (1) covers it."""
    node = _node(node)
    if node.metadata.get("doc") != doc:
        return False
    if normalise(sentence) in normalise(node.get_content()):
        return True
    start, end = node.start_char_idx, node.end_char_idx
    pos = doc_text(doc).find(sentence)
    if start is None or end is None or pos < 0:
        return False
    overlap = min(end, pos + len(sentence)) - max(start, pos)
    return overlap >= min_fraction * len(sentence)


def is_relevant(node: Any, question: dict) -> bool:
    """True when `node` covers any gold sentence of `question` (see `covers`)."""
    return any(covers(node, doc, sentence) for doc, sentence in gold_refs(question))


def expected_node_ids(nodes: Iterable[Any], question: dict) -> list[str]:
    """Ids of all `nodes` (e.g. `index.docstore.docs.values()`) relevant to `question`: the
    `expected_ids` that llama-index's `RetrieverEvaluator` needs."""
    return [_node(n).node_id for n in nodes if is_relevant(n, question)]


def _prefetch(questions: Sequence[dict]) -> None:
    """Batch-embed the questions into the course embedder's query cache, if it is loaded."""
    model = loaded_embedder()
    if model is not None:
        model.cache_queries([q["question"] for q in questions])


def retrieval_metrics(retriever: Any, questions: Iterable[dict], k: int = 5) -> dict[str, Any]:
    """hit@k and MRR@k of `retriever` on the answerable `questions` (unanswerable ones skipped).

    A retrieved node is a hit when it covers a gold sentence (rule in `covers`); for multi_hop
    questions either gold sentence counts, and `recall` (the fraction of gold sentences found
    in the top k) shows whether both were. Returns hit_rate, mrr, recall, n, and `per_question`
    (id, type, rank of the first hit or None)."""
    questions = list(questions)
    _prefetch(questions)
    rows = []
    for q in questions:
        refs = gold_refs(q)
        if not refs:
            continue
        nodes = retriever.retrieve(q["question"])[:k]
        rank = next((i + 1 for i, n in enumerate(nodes) if is_relevant(n, q)), None)
        found = sum(any(covers(n, d, s) for n in nodes) for d, s in refs)
        rows.append({"id": q["id"], "type": q["type"], "rank": rank, "recall": found / len(refs)})
    n = len(rows)
    if not n:
        raise ValueError("no answerable questions to evaluate")
    return {
        "hit_rate": sum(r["rank"] is not None for r in rows) / n,
        "mrr": sum(1 / r["rank"] for r in rows if r["rank"]) / n,
        "recall": sum(r["recall"] for r in rows) / n,
        "n": n,
        "k": k,
        "per_question": rows,
    }


def llama_index_retrieval_metrics(retriever: Any, questions: Iterable[dict], nodes: Sequence[Any]) -> dict[str, Any]:
    """The same evaluation through llama-index's `RetrieverEvaluator` (metrics hit_rate and mrr),
    with expected ids built from the gold sentences over `nodes` (all nodes of the index).
    It scores whatever the retriever returns, so give the retriever `similarity_top_k=k`."""
    from llama_index.core.evaluation import RetrieverEvaluator

    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
    questions = list(questions)
    _prefetch(questions)
    scores: dict[str, list[float]] = {"hit_rate": [], "mrr": []}
    for q in questions:
        if not gold_refs(q):
            continue
        expected = expected_node_ids(nodes, q)
        if not expected:
            raise ValueError(f"{q['id']}: no node covers its gold sentence; were the nodes built from the handbook?")
        result = evaluator.evaluate(query=q["question"], expected_ids=expected)
        for name in scores:
            scores[name].append(result.metric_vals_dict[name])
    n = len(scores["mrr"])
    return {"hit_rate": sum(scores["hit_rate"]) / n, "mrr": sum(scores["mrr"]) / n, "n": n}
