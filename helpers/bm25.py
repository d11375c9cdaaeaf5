"""BM25 from scratch as a llama-index retriever (Day 6's keyword ranker, shared with Day 16).

    from helpers.bm25 import BM25Retriever
    bm25 = BM25Retriever(nodes, k=5)                  # nodes: the SentenceSplitter chunks of the handbook
    bm25.retrieve("What does similarity_top_k set?")  # top k NodeWithScore, best first

BM25 scores a chunk by the query words it contains, each weighted by its rarity (IDF) and
damped by repetition (`k1`) and by chunk length (`b`):

    score(q, d) = sum over query words w of  idf(w) * tf(w, d) * (k1 + 1) / (tf(w, d) + k1 * (1 - b + b * |d| / avgdl))
    idf(w)      = ln(1 + (N - df(w) + 0.5) / (df(w) + 0.5))      (Lucene's IDF: never negative)

Defaults as on Day 6: the chunk's own text (`node.text`, no metadata), lower-cased and split on
`\\w+` (no stop words, no stemming), k1 = 1.5, b = 0.75; a word repeated in the query counts
each time. `tokenize` and `text` can be swapped to mimic other BM25s (Day 16 does, for bm25s).
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

WORD = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """Day 6's tokeniser: lower-case, then every run of word characters (`\\w+`) is a token."""
    return WORD.findall(text.lower())


def node_text(node: Any) -> str:
    """What Day 6 indexes: the chunk's own text, without its metadata (no title line)."""
    return node.text


class BM25Retriever(BaseRetriever):
    """Okapi BM25 over `nodes`, returning the top `k` as `NodeWithScore` (score = BM25 score).

    Ties are ordered as NumPy's default `argsort` leaves them (as on Day 6). A query with no known
    word scores every node 0 and still returns k nodes, like any top-k retriever."""

    def __init__(self, nodes: Sequence[Any], k: int = 5, k1: float = 1.5, b: float = 0.75,
                 tokenize: Callable[[str], list[str]] = tokenize,
                 text: Callable[[Any], str] = node_text) -> None:
        super().__init__()
        if not nodes:
            raise ValueError("BM25Retriever needs at least one node")
        self.nodes, self.k, self.k1, self.b, self.tokenize = list(nodes), k, k1, b, tokenize
        self.tf: list[Counter[str]] = [Counter(tokenize(text(n))) for n in self.nodes]
        self.len = np.array([sum(tf.values()) for tf in self.tf], dtype=float)
        df = Counter(w for tf in self.tf for w in tf)
        n = len(self.nodes)
        self.idf: dict[str, float] = {w: float(np.log(1 + (n - c + 0.5) / (c + 0.5))) for w, c in df.items()}
        # Each word's contribution to every node that holds it, computed once: a query's scores are the
        # sum of its words' rows (the same formula, term by term, as a loop over the nodes computes).
        norm = k1 * (1 - b + b * self.len / self.len.mean())
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for i, tf in enumerate(self.tf):
            for w, c in tf.items():
                postings[w].append((i, c))
        self.word_rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for w, rows in postings.items():
            idx, tf = np.array([i for i, _ in rows]), np.array([c for _, c in rows], dtype=float)
            self.word_rows[w] = (idx, self.idf[w] * tf * (k1 + 1) / (tf + norm[idx]))

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every node for `query`, in node order."""
        s = np.zeros(len(self.nodes))
        for w in self.tokenize(query):
            if w in self.word_rows:
                idx, part = self.word_rows[w]
                s[idx] += part
        return s

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        scores = self.scores(query_bundle.query_str)
        top = np.argsort(-scores)[: self.k]
        return [NodeWithScore(node=self.nodes[i], score=float(scores[i])) for i in top]
