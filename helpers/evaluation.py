"""Offline RAG evaluation with TruLens: a local feedback provider (MiniLM, no API), its calibration,
a groundedness sanity test, and recording a llama-index query engine into a throwaway database.

    from helpers import evaluation
    provider = evaluation.LocalProvider()
    session = evaluation.start_session("day06")            # .cache/trulens/day06.sqlite, reset
    scores = evaluation.record(query_engine, questions, "direct", evaluation.rag_triad(provider))
    evaluation.leaderboard(session)

Every score is in [0, 1]. A cosine similarity `c` becomes a score through a logistic map
`sigmoid(a * c + b)`, with (a, b) fitted per feedback on the dev split only (`calibrate`), so a
score reads as "how likely a dev pair with this similarity was a matching pair". The mismatched
pairs are hard negatives (`calibration_pairs`): a wrong section of the same document, and the
answer to another question on the same document (right topic, wrong fact).

What the judge can tell is measured, not assumed: `judge_validity` scores real and written-wrong
answers and reports, per feedback, the ROC AUC and Spearman correlation against correctness
(gold-fact support, `facts.fact_support(gold_answer, answer)`).
"""
from __future__ import annotations

import contextlib
import io
import math
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from trulens.core.feedback.provider import Provider

from .config import CACHE_DIR, DEFAULT_EMBEDDER
from .corpus import doc_text, gold_context, gold_refs, normalise, parse_headings, section_texts
from .embeddings import sentence_model
from .facts import fact_support, facts, split_sentences, swap_facts

SENTENCE_MODEL_ID = DEFAULT_EMBEDDER
FEEDBACKS = ("context_relevance", "groundedness", "answer_relevance")
# (a, b) of sigmoid(a * cosine + b), fitted by `calibrate(corpus.load_questions("dev"))` (logistic
# regression, classes weighted equally, matching vs hard-negative dev pairs; see `calibration_pairs`).
CALIBRATION: dict[str, tuple[float, float]] = {
    "context_relevance": (16.73, -8.54),
    "groundedness": (8.1, -3.48),
    "answer_relevance": (10.05, -2.72),
}
# The first calibration, on easy negatives (another document): `calibrate(dev, negatives="easy")`.
CALIBRATION_EASY: dict[str, tuple[float, float]] = {
    "context_relevance": (24.27, -10.48),
    "groundedness": (12.55, -4.69),
    "answer_relevance": (12.01, -2.37),
}


# --------------------------------------------------------------------------- embeddings
_EMB_CACHE: dict[str, Any] = {}


def embed(texts: Sequence[str]) -> Any:
    """Unit-length MiniLM embeddings (n, 384) of `texts`, cached per text."""
    import numpy as np

    missing = [t for t in dict.fromkeys(texts) if t not in _EMB_CACHE]
    if missing:
        vectors = sentence_model(SENTENCE_MODEL_ID).encode(missing, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        _EMB_CACHE.update(zip(missing, vectors))
    return np.stack([_EMB_CACHE[t] for t in texts]) if texts else np.zeros((0, 384), dtype="float32")


def prefetch(texts: Iterable[str] = (), contexts: Iterable[str] = ()) -> None:
    """Embed `texts` and the sentences of `contexts` in one batch (far faster than many small calls)."""
    embed(list(texts) + [s for c in contexts for s in split_sentences(c)])


def _max_cos(queries: Sequence[str], context: str) -> Any:
    """For each query text: the highest cosine similarity to any sentence of `context`."""
    import numpy as np

    sentences = split_sentences(context)
    if not sentences or not queries:
        return np.zeros(len(queries))
    return (embed(list(queries)) @ embed(sentences).T).max(axis=1)


def raw_context_relevance(question: str, context: str) -> float:
    """Cosine of the question with its best-matching context sentence."""
    return float(_max_cos([question], context)[0])


def raw_groundedness(context: str, answer: str) -> list[float]:
    """Per answer sentence: cosine with its best-supporting context sentence."""
    return [float(x) for x in _max_cos(split_sentences(answer) or [answer], context)]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def raw_answer_relevance(question: str, answer: str) -> float:
    """Cosine of the question and the whole answer."""
    vectors = embed([question, answer])
    return float(vectors[0] @ vectors[1])


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --------------------------------------------------------------------------- the provider
def _text(source: str | Iterable[str]) -> str:
    return source if isinstance(source, str) else "\n".join(source)


class LocalProvider(Provider):
    """A TruLens feedback provider that runs on the CPU with MiniLM: no API, no LLM judge.

    - `context_relevance(question, context)`: best question-sentence cosine, calibrated.
    - `groundedness(source, statement)`: per answer sentence, the calibrated best cosine with a
      context sentence times the fraction of its numbers and names that occur in the context;
      the mean over sentences. The fact check is what catches a swapped number, which barely
      moves an embedding.
    - `answer_relevance(prompt, response)`: question-answer cosine, calibrated.
    """

    calibration: dict = {k: list(v) for k, v in CALIBRATION.items()}

    def _score(self, name: str, cosine: float) -> float:
        a, b = self.calibration[name]
        return _sigmoid(a * cosine + b)

    def context_relevance(self, question: str, context: str) -> float:
        """How well the best sentence of `context` matches `question`, in [0, 1]."""
        return self._score("context_relevance", raw_context_relevance(question, _text(context)))

    def groundedness(self, source: str | list[str], statement: str) -> float:
        """How well `source` (a context or a list of chunks) supports `statement`, in [0, 1]."""
        context = _text(source)
        if not context.strip() or not statement.strip():
            return 0.0
        sentences = split_sentences(statement) or [statement]
        sims = raw_groundedness(context, statement)
        scores = [self._score("groundedness", c) * fact_support(s, context) for s, c in zip(sentences, sims)]
        return sum(scores) / len(scores)

    def groundedness_embedding_only(self, source: str | list[str], statement: str) -> float:
        """Groundedness without the fact check (what embeddings alone can see)."""
        sims = raw_groundedness(_text(source), statement)
        return sum(self._score("groundedness", c) for c in sims) / len(sims)

    def answer_relevance(self, prompt: str, response: str) -> float:
        """How well `response` matches the question `prompt`, in [0, 1]."""
        return self._score("answer_relevance", raw_answer_relevance(prompt, response))


# --------------------------------------------------------------------------- calibration
def _partner(questions: list[dict], i: int) -> dict:
    """A deterministic mismatched partner: the first question 7, 14, ... places on (cyclically) from another document."""
    n = len(questions)
    for step in range(1, n):
        other = questions[(i + step * 7) % n]
        if other["doc"] != questions[i]["doc"]:
            return other
    raise ValueError("need questions from at least two documents")


def _gold_sections(q: dict) -> set[tuple[str, str]]:
    pairs = {(q["doc"], q["section"])}
    if q.get("second"):
        pairs.add((q["second"]["doc"], q["second"]["section"]))
    return pairs


def _holds_gold(text: str, q: dict) -> bool:
    body = normalise(text)
    return any(normalise(sentence) in body for _, sentence in gold_refs(q))


def wrong_section(q: dict) -> str | None:
    """A hard negative context for `q`: the first ``##`` section after its gold section (cyclically)
    in the same document that holds none of its gold sentences; None if the document has no other."""
    text = doc_text(q["doc"])
    heads = [title for level, title, _ in parse_headings(text) if level == 2]
    bodies = section_texts(text)
    start = heads.index(q["section"]) if q["section"] in heads else -1
    for step in range(1, len(heads) + 1):
        title = heads[(start + step) % len(heads)]
        body = bodies[title][0]
        if (q["doc"], title) not in _gold_sections(q) and len(body.split()) >= 20 and not _holds_gold(body, q):
            return body
    return None


def same_topic_partner(questions: list[dict], i: int) -> dict | None:
    """Right topic, wrong fact: the next question (cyclically) on the same document whose gold
    section differs from question i's and whose answer shares none of its gold sentences; None if none."""
    q, n = questions[i], len(questions)
    for step in range(1, n):
        other = questions[(i + step) % n]
        if (other["doc"] == q["doc"] and other.get("gold_sentence") and not _gold_sections(other) & _gold_sections(q)
                and normalise(other["answer"]) != normalise(q["answer"])):
            return other
    return None


def calibration_pairs(questions: Iterable[dict], negatives: str = "hard") -> dict[str, tuple[list[float], list[int]]]:
    """Raw cosines and labels (1 matching, 0 mismatched) per feedback, from answerable questions.

    negatives="hard" (the default, what CALIBRATION holds): mismatches a judge must really tell apart
      context_relevance: question vs its gold section / a wrong section of the same document;
      groundedness: gold answer vs its gold section(s) / a wrong section of the same document, and the
        answer to another question on the same document vs this question's gold section;
      answer_relevance: question vs its gold answer and its gold sentence (an answer in a full sentence) /
        the gold answer and the gold sentence of another question on the same document.
    negatives="easy" (the course's first calibration): the partner comes from another document, which
    any on-topic text beats ("France is in Europe." scored 0.997 answer relevance to "What is the capital
    of France?")."""
    if negatives not in ("hard", "easy"):
        raise ValueError(f"negatives must be 'hard' or 'easy', not {negatives!r}")
    qs = [q for q in questions if q.get("gold_sentence")]
    out: dict[str, tuple[list[float], list[int]]] = {name: ([], []) for name in FEEDBACKS}
    rows: list[tuple[str, float, int]] = []
    if negatives == "easy":
        prefetch([q["question"] for q in qs] + [q["answer"] for q in qs], [gold_context(q) for q in qs])
        prefetch([s for q in qs for s in split_sentences(q["answer"])])
        for i, q in enumerate(qs):
            other = _partner(qs, i)
            rows += [("context_relevance", raw_context_relevance(q["question"], gold_context(q)), 1),
                     ("context_relevance", raw_context_relevance(q["question"], gold_context(other)), 0),
                     ("groundedness", _mean(raw_groundedness(gold_context(q), q["answer"])), 1),
                     ("groundedness", _mean(raw_groundedness(gold_context(other), q["answer"])), 0),
                     ("answer_relevance", raw_answer_relevance(q["question"], q["answer"]), 1),
                     ("answer_relevance", raw_answer_relevance(q["question"], other["answer"]), 0)]
    else:
        wrong = [wrong_section(q) for q in qs]
        partners = [same_topic_partner(qs, i) for i in range(len(qs))]
        prefetch([q["question"] for q in qs] + [s for q in qs for s in split_sentences(q["answer"]) or [q["answer"]]]
                 + [q["answer"] for q in qs] + [q["gold_sentence"] for q in qs],
                 [gold_context(q) for q in qs] + [w for w in wrong if w])
        for q, w, p in zip(qs, wrong, partners):
            context = gold_context(q)
            rows += [("context_relevance", raw_context_relevance(q["question"], context), 1),
                     ("groundedness", _mean(raw_groundedness(context, q["answer"])), 1),
                     ("answer_relevance", raw_answer_relevance(q["question"], q["answer"]), 1),
                     ("answer_relevance", raw_answer_relevance(q["question"], q["gold_sentence"]), 1)]
            if w:
                rows += [("context_relevance", raw_context_relevance(q["question"], w), 0),
                         ("groundedness", _mean(raw_groundedness(w, q["answer"])), 0)]
            if p:
                rows += [("groundedness", _mean(raw_groundedness(context, p["answer"])), 0),
                         ("answer_relevance", raw_answer_relevance(q["question"], p["answer"]), 0),
                         ("answer_relevance", raw_answer_relevance(q["question"], p["gold_sentence"]), 0)]
    for name, cosine, label in rows:
        out[name][0].append(cosine)
        out[name][1].append(label)
    return out


def calibrate(questions: Iterable[dict], negatives: str = "hard") -> dict[str, tuple[float, float]]:
    """Fit (a, b) of sigmoid(a * cosine + b) per feedback by logistic regression (classes weighted
    equally) on `calibration_pairs(questions, negatives)`. Use the dev split only; with the default
    hard negatives the result is what CALIBRATION holds."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    fitted = {}
    for name, (x, y) in calibration_pairs(questions, negatives).items():
        weight = "balanced" if negatives == "hard" else None
        model = LogisticRegression(C=100.0, class_weight=weight).fit(np.array(x).reshape(-1, 1), np.array(y))
        fitted[name] = (round(float(model.coef_[0, 0]), 2), round(float(model.intercept_[0]), 2))
    return fitted


# --------------------------------------------------------------------------- groundedness sanity test
def groundedness_separation(provider: Any, questions: Iterable[dict],
                            types: Iterable[str] = ("fact", "keyword", "paraphrase", "multi_hop")) -> dict[str, Any]:
    """Faithful answers (the gold answer) against fact-swapped ones (`swap_facts`), both scored
    against the gold context. Summary questions are left out by default: their gold section is
    only the start of what a summary draws on. Returns the mean scores, their difference, the
    fraction of pairs ordered correctly (faithful > swapped; ties count as wrong), the ROC AUC over
    all scores, and the same numbers for the embedding-only score; `rows` lists every pair."""
    from sklearn.metrics import roc_auc_score

    questions = [q for q in questions if q.get("gold_sentence") and q["type"] in set(types)]
    prefetch([s for q in questions for a in (q["answer"], swap_facts(q["answer"], gold_context(q)) or "")
              for s in split_sentences(a)], [gold_context(q) for q in questions])
    rows = []
    for q in questions:
        context = gold_context(q)
        swapped = swap_facts(q["answer"], context)
        if swapped is None:
            continue
        rows.append({"id": q["id"], "faithful": q["answer"], "swapped": swapped,
                     "g_faithful": provider.groundedness(context, q["answer"]),
                     "g_swapped": provider.groundedness(context, swapped),
                     "e_faithful": provider.groundedness_embedding_only(context, q["answer"]),
                     "e_swapped": provider.groundedness_embedding_only(context, swapped)})
    if not rows:
        raise ValueError("no answer with a number or a name to swap")
    out: dict[str, Any] = {"n": len(rows), "rows": rows}
    for key, label in (("g", "groundedness"), ("e", "embedding_only")):
        f = [r[f"{key}_faithful"] for r in rows]
        s = [r[f"{key}_swapped"] for r in rows]
        out[label] = {
            "mean_faithful": sum(f) / len(f), "mean_swapped": sum(s) / len(s),
            "mean_difference": (sum(f) - sum(s)) / len(f),
            "fraction_ordered": sum(a > b for a, b in zip(f, s)) / len(f),
            "auc": float(roc_auc_score([1] * len(f) + [0] * len(s), f + s)),
        }
    return out


# --------------------------------------------------------------------------- does the judge see correctness?
def auc(labels: Any, scores: Any) -> float:
    """ROC AUC of `scores` for the positive `labels` (Mann-Whitney: ties count one half), equal to
    sklearn's `roc_auc_score` and fast enough for a bootstrap of thousands of resamples."""
    import numpy as np
    from scipy.stats import rankdata

    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("the AUC needs both positive and negative labels")
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))



def _plain(text: str) -> str:
    text = re.sub(r"^\s*(title:|the answer is:?)\s*", "", text.strip(), flags=re.I)
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@lru_cache(maxsize=1)
def _handbook_headings() -> frozenset[str]:
    from .corpus import handbook_files

    return frozenset(_plain(title) for path in handbook_files()
                     for _, title, _ in parse_headings(path.read_text(encoding="utf-8")))


def title_only(answer: str, context: str = "") -> bool:
    """True when `answer` is nothing but a heading: a document title or section heading of the
    handbook, or a heading line or "title: ..." line of `context` (ignoring case, punctuation and a
    leading "The answer is"). A small model copies one when it has nothing to say; the triad rates
    such an answer as on topic and grounded, though it states no fact."""
    plain = _plain(answer)
    if not plain:
        return False
    local = {_plain(line.lstrip("#")) for line in context.splitlines()
             if line.lstrip().startswith("#") or line.lower().startswith("title:")}
    return plain in _handbook_headings() or plain in local


def written_answers(q: dict, questions: Sequence[dict]) -> list[dict]:
    """Answers to `q` whose correctness is known by construction, for `judge_validity`:
    "gold" (the gold answer: right), "swapped fact" (`swap_facts`: one number or name changed),
    "same topic" (the gold answer of another question on the same document, another section:
    right topic, wrong fact) and "title only" (the heading of the gold section). Kinds that cannot
    be built for `q` are left out."""
    out = [{"kind": "gold", "answer": q["answer"]}]
    swapped = swap_facts(q["answer"], gold_context(q))
    if swapped:
        out.append({"kind": "swapped fact", "answer": swapped})
    pool = [p for p in questions if p.get("gold_sentence")]
    if q in pool:
        partner = same_topic_partner(pool, pool.index(q))
        if partner:
            out.append({"kind": "same topic", "answer": partner["answer"]})
    out.append({"kind": "title only", "answer": q["section"] + "."})
    return out


def judge_validity(provider: Any, rows: Iterable[dict], n_boot: int = 1000, seed: int = 0) -> tuple[Any, Any]:
    """Does each triad score track correctness? `rows`: dicts with question, context, answer and gold
    (the gold answer), plus any extra columns (e.g. kind, engine). Rows whose gold answer states no
    number or name are dropped (their support is 1 whatever the answer says).

    Correctness is gold-fact support, `facts.fact_support(gold, answer)`: the share of the gold
    answer's numbers and names that the answer states; "correct" means all of them. Returns
    (scored, table): every row with its three scores, support, correct and title_only; and per
    feedback: n, correct answers, the ROC AUC of the score for correct vs not, a 95 % bootstrap
    interval of that AUC (rows resampled), and the Spearman rank correlation with support."""
    import numpy as np
    import pandas as pd
    from scipy.stats import spearmanr
    from sklearn.metrics import roc_auc_score

    data = pd.DataFrame([dict(r) for r in rows if facts(r["gold"])])
    if data.empty:
        raise ValueError("no row whose gold answer states a number or a name")
    prefetch(list(data["question"]) + [s for a in data["answer"] for s in split_sentences(a) or [a]], list(data["context"]))
    data["Context Relevance"] = [provider.context_relevance(q, c) for q, c in zip(data["question"], data["context"])]
    data["Groundedness"] = [provider.groundedness(c, a) for c, a in zip(data["context"], data["answer"])]
    data["Answer Relevance"] = [provider.answer_relevance(q, a) for q, a in zip(data["question"], data["answer"])]
    data["support"] = [fact_support(g, a) for g, a in zip(data["gold"], data["answer"])]
    data["correct"] = data["support"] == 1.0
    data["title_only"] = [title_only(a, c) for a, c in zip(data["answer"], data["context"])]
    y = data["correct"].to_numpy()
    if y.all() or not y.any():
        raise ValueError("need both correct and wrong answers to measure an AUC")
    rng = np.random.default_rng(seed)
    table = {}
    for name in ("Groundedness", "Answer Relevance", "Context Relevance"):
        x = data[name].to_numpy()
        boots = []
        for _ in range(n_boot):
            i = rng.integers(0, len(x), len(x))
            if 0 < y[i].sum() < len(i):
                boots.append(auc(y[i], x[i]))
        table[name] = {"n": len(x), "correct": int(y.sum()), "auc": float(roc_auc_score(y, x)),
                       "auc_low": float(np.percentile(boots, 2.5)), "auc_high": float(np.percentile(boots, 97.5)),
                       "spearman": float(spearmanr(x, data["support"]).statistic)}
    return data, pd.DataFrame(table).T


# --------------------------------------------------------------------------- TruLens recording
@contextlib.contextmanager
def silenced() -> Any:
    """Swallow TruLens' chatter (instrumentation lines, migration notes) on stdout and stderr."""
    import logging

    buffer = io.StringIO()
    level = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        logging.disable(level)


def start_session(name: str, reset: bool = True) -> Any:
    """A `trulens.core.TruSession` on ``sqlite:///.cache/trulens/<name>.sqlite`` in the repository
    (git-ignored), emptied first when `reset`. TruSession is a singleton: one database per process."""
    import logging

    logging.getLogger("trulens").setLevel(logging.ERROR)  # e.g. "Package jsonschema not present in requirements."
    folder = CACHE_DIR / "trulens"
    folder.mkdir(parents=True, exist_ok=True)
    with silenced():
        from trulens.core import TruSession

        session = TruSession(database_url=f"sqlite:///{folder / (name + '.sqlite')}")
        if reset:
            session.reset_database()
    return session


def rag_triad(provider: Any) -> list[Any]:
    """The RAG triad as TruLens `Metric`s with OTEL `Selector`s: context relevance (per retrieved
    chunk, averaged), groundedness (answer against all chunks), answer relevance."""
    import numpy as np
    from trulens.core import Metric, Selector

    return [
        Metric(implementation=provider.context_relevance, name="Context Relevance", agg=np.mean,
               selectors={"question": Selector.select_record_input(),
                          "context": Selector.select_context(collect_list=False)}),
        Metric(implementation=provider.groundedness, name="Groundedness",
               selectors={"source": Selector.select_context(collect_list=True),
                          "statement": Selector.select_record_output()}),
        Metric(implementation=provider.answer_relevance, name="Answer Relevance",
               selectors={"prompt": Selector.select_record_input(),
                          "response": Selector.select_record_output()}),
    ]


def record(query_engine: Any, questions: Iterable[dict | str], app_name: str, metrics: Sequence[Any],
           app_version: str = "v1", timeout: float = 120.0) -> Any:
    """Run `questions` through `query_engine` under TruLens' llama-index recorder (`TruLlama`),
    compute `metrics` on every record, and return one row per record: question, answer, latency
    and one column per metric. Raises if any score is missing (TruLens turns a failing feedback
    function into None/NaN instead of an exception)."""
    from trulens.apps.llamaindex import TruLlama
    from trulens.core import TruSession

    with silenced():  # TruLlama prints one line per instrumented method (~160)
        app = TruLlama(query_engine, app_name=app_name, app_version=app_version, feedbacks=list(metrics))
    texts = [q["question"] if isinstance(q, dict) else q for q in questions]
    with app as recording:
        for text in texts:
            query_engine.query(text)
    ids = [r.record_id for r in recording.records]
    with silenced():
        app.retrieve_feedback_results(record_ids=ids, timeout=timeout)
        records, names = TruSession().get_records_and_feedback(record_ids=ids)
    app.stop_evaluator()
    table = records.set_index("record_id").loc[ids, ["input", "output", "latency", *names]].reset_index(drop=True)
    table = table.rename(columns={"input": "question", "output": "answer"})
    missing = table[list(names)].isna().sum()
    if missing.any() or set(names) != {m.name for m in metrics}:
        raise RuntimeError(f"TruLens returned missing scores (a feedback function failed): {missing.to_dict()}")
    return table


def leaderboard(session: Any) -> Any:
    """Per app: the mean of each feedback and the mean latency (seconds), from the session's database."""
    with silenced():
        board = session.get_leaderboard()
    cols = [c for c in board.columns if c not in ("total_cost",)]
    return board[cols]
