"""The course assistant (Day 30): agentic RAG over the handbook and the course's own notebooks.

    from helpers.assistant import Assistant
    bot = Assistant()                                   # index: data/handbook + notebooks/*.ipynb cells
    reply = bot.answer("What does similarity_top_k set?", session_id="me")
    reply.text, reply.route, [s.url for s in reply.sources]
    for event in bot.stream("And its default?", session_id="me"):   # the same turn, token by token
        ...   # {"type": "sources", ...}, {"type": "token", "text": ...}, ..., {"type": "done", "answer": Answer}

One turn: guardrails on the question (optional) -> memory (a follow-up borrows the previous question's
words for retrieval) -> router (calculator | a day's notebook | summary | fact lookup) -> hybrid
retrieval (Day 6's BM25 + the embedder, relative-score fusion as chosen on Day 16) -> optional
cross-encoder reranker (Day 20; off by default: it ranks worse than the fusion) -> guardrails on the
chunks -> the generator (pluggable; default SmolLM2 on the course's engine, greedy) -> guardrails on
the answer -> memory. Generation holds a lock: the engines keep one KV cache and are not thread-safe.
"""
from __future__ import annotations

import ast
import hashlib
import json
import logging
import operator
import re
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import config

log = logging.getLogger("helpers.assistant")

NOTEBOOK_DIR = config.REPO_ROOT / "notebooks"
MAX_QUESTION_CHARS = 2000  # the web app refuses longer questions (HTTP 422)
K = 3  # chunks in the prompt
DEPTH = 10  # each retriever's list before fusion (and the reranker's input)
BM25_WEIGHT = 0.7  # relative-score fusion, BM25's share: Day 16's choice on dev
MEMORY_TURNS = 3
NOTEBOOK_CHARS = 4000  # a notebook section is indexed (BM25) by its first 4,000 characters
LEAD_CHARS = 240  # ... and embedded by its heading and first words
CONTEXT_CHARS = 800  # each chunk's share of the prompt: a notebook section can be 4,000 characters, and prefill dominates
SYSTEM = ("You answer questions about an LLM course using only the context. Answer in one or two sentences."
          " If the context does not say, answer: I don't know.")
SUMMARY_SYSTEM = ("You summarise parts of an LLM course using only the context, in two or three sentences.")
ROUTE_DESCRIPTIONS = {  # Day 9's embedding selector and its dev-chosen "question patterns" wording (best of three on dev)
    "summary": "Summarize the whole document: give a high-level overview of everything.",
    "fact": "What does a section say about a specific detail? How many, which, when, how long.",
}
FOLLOW_UP = re.compile(r"^(and|but|so|what about|how about)\b|\b(it|its|it's|that|this|they|them|their|those|these|there)\b",
                       re.I)
NOTEBOOK_TOOL = re.compile(r"\bday\s*(\d{1,2})\b[^?]*\bnotebook\b|\bnotebook (?:of|for) day\s*(\d{1,2})\b", re.I)
ARITHMETIC = re.compile(r"[-+(]*\d[\d.]*(?:\s*(?:\*\*|[-+*/%])\s*[-+(]*\d[\d.]*\)*)+")


# --------------------------------------------------------------------------- the index
def notebook_sections(folder: Path = NOTEBOOK_DIR) -> list[dict[str, Any]]:
    """The course notebooks cut at their `## ` headings (sources only, no outputs): one dict per section
    with text (its markdown and code cells, at most `NOTEBOOK_CHARS`), lead (the heading and the
    opening words, at most `LEAD_CHARS`: what the embedder reads), doc, day, cell and to (its cells)."""
    sections = []
    for path in sorted(folder.glob("day*.ipynb")):
        day = int(re.match(r"day(\d+)", path.name).group(1))
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        starts = [i for i, c in enumerate(cells) if i == 0 or (c["cell_type"] == "markdown"
                                                               and "".join(c["source"]).startswith("## "))]
        for start, end in zip(starts, starts[1:] + [len(cells)]):
            parts = ["".join(c["source"]).strip() for c in cells[start:end] if c["cell_type"] in ("markdown", "code")]
            text = "\n\n".join(p for p in parts if p)
            if text:
                sections.append({"text": text[:NOTEBOOK_CHARS], "lead": " ".join(text.split())[:LEAD_CHARS],
                                 "doc": path.name, "day": day, "cell": start, "to": end - 1})
    return sections


def build_nodes(handbook: bool = True, notebooks: bool = True, folder: Path = NOTEBOOK_DIR) -> list[Any]:
    """The assistant's chunks as llama-index `TextNode`s: the handbook split as on the RAG days
    (`SentenceSplitter`, 256 tokens, 32 overlap: the golden questions' relevance rule applies), and
    one node per notebook section. Metadata: doc, title, kind, and for notebook sections day, cell,
    to and lead (the short text the embedder reads; BM25 reads the whole section)."""
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import TextNode

    from . import corpus, llm

    nodes: list[Any] = []
    if handbook:
        docs = corpus.load_documents()
        nodes += SentenceSplitter(chunk_size=llm.CHUNK_SIZE, chunk_overlap=llm.CHUNK_OVERLAP).get_nodes_from_documents(docs)
        for n in nodes:
            n.metadata["kind"] = "handbook"
    if notebooks:
        for c in notebook_sections(folder):
            first = c["text"].splitlines()[0]
            heading = first[3:].strip()[:60] if first.startswith("## ") else "introduction"
            hidden = ["doc", "kind", "day", "cell", "to", "lead"]
            nodes.append(TextNode(id_=f"{c['doc']}#{c['cell']}", text=c["text"],
                                  metadata={"doc": c["doc"], "title": f"Day {c['day']} notebook: {heading}",
                                            "kind": "notebook", "day": c["day"], "cell": c["cell"], "to": c["to"],
                                            "lead": c["lead"]},
                                  excluded_embed_metadata_keys=hidden, excluded_llm_metadata_keys=hidden))
    return nodes


def embed_text(node: Any) -> str:
    """What the embedder reads: a handbook chunk whole (with its title), a notebook section's lead only
    (embedding ~1,500 notebook cells in full cost minutes of CPU; BM25 still reads every word)."""
    return node.metadata.get("lead") or node.get_content(metadata_mode="embed")


def source_url(node: Any) -> str:
    """Where the web app shows a chunk's source: /source/<file> (a notebook section: ?cell=N&to=M)."""
    m = node.metadata
    return f"/source/{m['doc']}" + (f"?cell={m['cell']}&to={m['to']}" if "cell" in m else "")


class CachedEmbedder:
    """Normalised sentence embeddings with a per-text disk cache (`.cache/assistant/`, git-ignored):
    the chunks are embedded once per machine, and an edited notebook re-embeds only its changed sections."""

    def __init__(self, hub_id: str = config.RAG_EMBEDDER, cache_dir: Path | None = config.CACHE_DIR / "assistant") -> None:
        from .embeddings import sentence_model
        from .models import resolve

        self.info = resolve(hub_id)
        self.model = sentence_model(hub_id)
        tag = hashlib.sha1(self.info.location.encode()).hexdigest()[:10]
        self.path = cache_dir / f"embeddings-{tag}.npz" if cache_dir else None
        self.cache: dict[str, np.ndarray] = {}
        if self.path and self.path.is_file():
            with np.load(self.path) as z:
                self.cache = dict(zip(z["keys"].tolist(), z["vectors"]))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def __call__(self, texts: Sequence[str], store: bool = True) -> np.ndarray:
        keys = [self.key(t) for t in texts]
        todo = [t for k, t in dict(zip(keys, texts)).items() if k not in self.cache]
        if todo:
            vectors = self.model.encode(todo, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
            self.cache.update(zip((self.key(t) for t in todo), np.asarray(vectors, dtype=np.float32)))
            if store and self.path and len(todo) > 8:  # queries are not worth a write
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_suffix(".tmp.npz")
                np.savez(tmp, keys=np.array(list(self.cache)), vectors=np.stack(list(self.cache.values())))
                tmp.replace(self.path)
        return np.stack([self.cache[k] for k in keys])


# --------------------------------------------------------------------------- retrieval
class HybridRetriever:
    """Dense (cosine over normalised embeddings) + BM25 (Day 6's, `helpers.bm25`) fused by relative
    score: min-max scale each top-`depth` list to [0, 1], weight BM25 by `bm25_weight`, dense by the
    rest, sum (Day 16). `mode` "dense" or "bm25" uses one list alone. An optional cross-encoder
    `reranker` reorders the fused top `depth`."""

    def __init__(self, nodes: Sequence[Any], embed: Callable[[Sequence[str]], np.ndarray], mode: str = "hybrid",
                 bm25_weight: float = BM25_WEIGHT, depth: int = DEPTH, reranker: Any = None) -> None:
        from .bm25 import BM25Retriever

        self.nodes, self.embed, self.mode, self.bm25_weight, self.depth, self.reranker = (
            list(nodes), embed, mode, bm25_weight, depth, reranker)
        self.vectors = embed([embed_text(n) for n in self.nodes])
        self.bm25 = BM25Retriever(self.nodes, k=depth)

    def bm25_scores(self, query: str) -> np.ndarray:
        """BM25 of every node for `query` (`helpers.bm25.BM25Retriever.scores`)."""
        return self.bm25.scores(query)

    def scored(self, query: str, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(node index, score) best first, at most `depth` (only indices where `allowed` is True)."""
        lists = []
        for name, weight in (("dense", 1 - self.bm25_weight), ("bm25", self.bm25_weight)):
            if self.mode not in ("hybrid", name):
                continue
            s = self.vectors @ self.embed([query], store=False)[0] if name == "dense" else self.bm25_scores(query)
            s = np.where(allowed, s, -np.inf) if allowed is not None else s
            top = [i for i in np.argsort(-s, kind="stable")[: self.depth] if np.isfinite(s[i])]
            lists.append((1.0 if self.mode != "hybrid" else weight, [(int(i), float(s[i])) for i in top]))
        fused: dict[int, float] = {}
        for weight, top in lists:
            lo, hi = min(s for _, s in top), max(s for _, s in top)
            for i, s in top:
                part = s if self.mode != "hybrid" else ((s - lo) / (hi - lo) if hi > lo else float(hi > 0))
                fused[i] = fused.get(i, 0.0) + weight * part
        ranked = sorted(fused.items(), key=lambda x: -x[1])[: self.depth]
        if self.reranker is not None and ranked:
            texts = [self.nodes[i].get_content() for i, _ in ranked]
            scores = self.reranker.predict([(query, t) for t in texts], batch_size=16, show_progress_bar=False)
            ranked = [(ranked[j][0], float(scores[j])) for j in np.argsort(-np.asarray(scores), kind="stable")]
        return ranked

    def retrieve(self, query: str, k: int = K, allowed: np.ndarray | None = None) -> list[Any]:
        """The top `k` as `NodeWithScore` (llama-index's retriever interface, for `rag.retrieval_metrics`)."""
        from llama_index.core.schema import NodeWithScore

        return [NodeWithScore(node=self.nodes[i], score=s) for i, s in self.scored(query, allowed)[:k]]


# --------------------------------------------------------------------------- tools
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Mod: operator.mod, ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def calculate(expression: str) -> float:
    """Evaluate arithmetic (+ - * / % **, parentheses, numbers) without `eval`: anything else, such as
    a name or a call, raises ValueError. Exponents above 100 are refused (no 9**9**9 hang)."""
    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 100:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"not arithmetic: {ast.dump(node)[:60]}")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from exc
    return ev(tree.body)


def find_arithmetic(question: str) -> str | None:
    """The longest arithmetic expression in a question (two numbers and an operator at least), or None."""
    found = [m.group(0).strip() for m in ARITHMETIC.finditer(question)]
    return max(found, key=len) if found else None


def notebook_day(question: str) -> int | None:
    """The day of a question that asks about a day's *notebook* ("in the Day 16 notebook ..."), else None.
    A bare "Day 20" is not enough: the handbook's course guide has its own day numbers."""
    m = NOTEBOOK_TOOL.search(question)
    return int(m.group(1) or m.group(2)) if m else None


# --------------------------------------------------------------------------- generators
class Generator(Protocol):
    """What the assistant needs from a generator: stream the reply to chat `messages` as text pieces."""

    name: str

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]: ...


class LocalGenerator:
    """A course chat model through the model layer (`helpers.llm.causal_lm`: offline SmolLM2 on
    onnxruntime-genai int4, or a course adapter merged in; the original on Colab), greedy, ending at
    a blank line, streamed with transformers' `TextIteratorStreamer`."""

    def __init__(self, hub_id: str = config.DEFAULT_LLM, variant: str | None = None, adapter: str | None = None,
                 stop: Sequence[str] = ("\n\n",)) -> None:
        from .llm import causal_lm, model_label

        self.model, self.tok, self.info = causal_lm(hub_id, variant, adapter)
        self.name, self.stop = model_label(self.info), list(stop)

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        from .generation import greedy, template_ids

        ids = template_ids(self.tok, messages)
        streamer = TextIteratorStreamer(self.tok, skip_prompt=True, skip_special_tokens=True)
        stops = {"stop_strings": self.stop, "tokenizer": self.tok} if self.stop else {}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                greedy(self.model, self.tok, ids, max_new_tokens, streamer=streamer, **stops)
            except BaseException as exc:  # surface it in the caller's thread
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        text = ""
        for piece in streamer:
            cuts = [i for i in ((text + piece).find(s) for s in self.stop) if i >= 0]
            if cuts:  # a stop string arrived: emit what comes before it, let the worker finish
                if min(cuts) > len(text):
                    yield (text + piece)[len(text):min(cuts)]
                for _ in streamer:
                    pass
                break
            text += piece
            yield piece
        worker.join()
        if errors:
            raise errors[0]


class ScriptedGenerator:
    """A stand-in generator for tests: replies with `reply` (a string or a function of the messages),
    word by word, and records every prompt in `calls`."""

    name = "scripted"

    def __init__(self, reply: str | Callable[[list[dict[str, str]]], str] = "The answer is 42.") -> None:
        self.reply, self.calls = reply, []

    def stream(self, messages: list[dict[str, str]], max_new_tokens: int) -> Iterator[str]:
        self.calls.append(messages)
        text = self.reply(messages) if callable(self.reply) else self.reply
        for i, word in enumerate(text.split(" ")):
            yield word if i == 0 else " " + word


# --------------------------------------------------------------------------- the assistant
@dataclass
class Source:
    """One retrieved chunk behind an answer."""

    doc: str
    title: str
    url: str
    kind: str
    score: float
    snippet: str


@dataclass
class Answer:
    """One turn's result. `route`: calculate, notebook, summary, fact or blocked; `query`: what was
    retrieved with (the question, or with memory the previous question + this one); `context`: the
    chunk texts the generator saw."""

    text: str
    sources: list[Source]
    route: str
    query: str = ""
    context: list[str] = field(default_factory=list)
    session_id: str = "default"
    generator: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Assistant:
    """The course assistant. Every part can be swapped (the notebook's ablations do): `nodes` (the
    index), `embed` (texts -> normalised vectors), `generator` (see `Generator`), `retrieval`
    ("hybrid", "dense", "bm25"), `reranker` (a CrossEncoder or None), `router` and `memory` on/off,
    `guardrails` (an object with check_input, filter_chunks, check_output, redact; see Day 31)."""

    def __init__(self, nodes: Sequence[Any] | None = None, embed: Callable[..., np.ndarray] | None = None,
                 generator: Generator | None = None, retrieval: str = "hybrid", reranker: Any = None,
                 router: bool = True, memory: bool = True, tools: bool = True, guardrails: Any = None,
                 k: int = K, max_new_tokens: int = 48, bm25_weight: float = BM25_WEIGHT) -> None:
        self.nodes = list(nodes) if nodes is not None else build_nodes()
        self.embed = embed or CachedEmbedder()
        self.retriever = HybridRetriever(self.nodes, self.embed, mode=retrieval, bm25_weight=bm25_weight,
                                         reranker=reranker)
        self._generator = generator
        self.router, self.memory, self.tools, self.guardrails = router, memory, tools, guardrails
        self.k, self.max_new_tokens = k, max_new_tokens
        self.history: dict[str, deque] = defaultdict(lambda: deque(maxlen=MEMORY_TURNS))
        self.lock = threading.Lock()  # one generation at a time: the engines are not thread-safe
        self.log: list[dict[str, str]] = []  # one redacted record per turn
        self._routes = None

    @property
    def generator(self) -> Generator:
        if self._generator is None:
            self._generator = LocalGenerator()
        return self._generator

    def _retriever_with(self, **changes: Any) -> HybridRetriever:
        """A retriever over the same nodes and vectors with other settings (for ablations)."""
        r = object.__new__(HybridRetriever)
        r.__dict__.update(self.retriever.__dict__ | changes)
        return r

    # ---------------------------------------------------------------- routing
    def route(self, question: str) -> str:
        """calculate (arithmetic in the question), notebook (asks about a day's notebook), else Day 9's
        embedding selector between summary and fact (fact when the router is off)."""
        if self.tools and find_arithmetic(question):
            return "calculate"
        if self.tools and notebook_day(question) is not None:
            return "notebook"
        if not self.router:
            return "fact"
        if self._routes is None:
            self._routes = (list(ROUTE_DESCRIPTIONS), self.embed(list(ROUTE_DESCRIPTIONS.values()), store=False))
        names, vectors = self._routes
        return names[int(np.argmax(vectors @ self.embed([question], store=False)[0]))]

    def retrieval_query(self, question: str, session_id: str) -> str:
        """With memory, a follow-up ("and its default?") is retrieved with the previous question prepended."""
        past = self.history.get(session_id)
        if self.memory and past and (FOLLOW_UP.search(question) or len(question.split()) <= 4):
            return f"{past[-1][0]} {question}"
        return question

    def messages(self, question: str, context: Sequence[str], route: str, session_id: str) -> list[dict[str, str]]:
        """The chat prompt: system rules, the previous turn (memory), numbered context, the question."""
        msgs = [{"role": "system", "content": SUMMARY_SYSTEM if route == "summary" else SYSTEM}]
        if self.memory:
            for q, a in list(self.history.get(session_id, []))[-1:]:
                msgs += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        ctx = "\n\n".join(f"[{i + 1}] {' '.join(t.split())[:CONTEXT_CHARS]}" for i, t in enumerate(context))
        msgs.append({"role": "user", "content": f"Context:\n{ctx}\n\nQuestion: {question}"})
        return msgs

    # ---------------------------------------------------------------- one turn
    def stream(self, question: str, session_id: str = "default", max_new_tokens: int | None = None
               ) -> Iterator[dict[str, Any]]:
        """One turn as events: {"type": "sources", "route", "sources"}, then {"type": "token", "text"}
        pieces, then {"type": "done", "answer": Answer}. With guardrails the answer is checked before
        any token is sent, so it arrives as one piece."""
        g = self.guardrails
        if g is not None:
            verdict = g.check_input(question)
            if not verdict.allowed:
                answer = Answer(verdict.reason, [], "blocked", session_id=session_id)
                yield {"type": "sources", "route": "blocked", "sources": []}
                yield {"type": "token", "text": verdict.reason}
                self._record(question, answer)
                yield {"type": "done", "answer": answer}
                return
            question = verdict.text
        route = self.route(question)
        query = self.retrieval_query(question, session_id)
        if route == "calculate":
            expression = find_arithmetic(question)
            try:
                value = calculate(expression)
                text = f"{expression} = {value:.10g}"
            except (ValueError, ZeroDivisionError, OverflowError) as exc:
                text = f"I could not calculate {expression!r}: {exc}"
            yield {"type": "sources", "route": route, "sources": []}
            yield {"type": "token", "text": text}
            answer = Answer(text, [], route, query=expression, session_id=session_id, generator="calculator")
            self._finish(question, answer, session_id)
            yield {"type": "done", "answer": answer}
            return
        allowed = None
        if route == "notebook":
            day = notebook_day(question)
            allowed = np.array([n.metadata.get("day") == day for n in self.nodes])
            if not allowed.any():
                allowed = None  # no such notebook: search everything
        hits = self.retriever.retrieve(query, self.k, allowed)
        texts = [h.node.get_content() for h in hits]
        if g is not None:
            kept = g.filter_chunks(texts)
            pairs = list(zip(hits, kept)) if len(kept) == len(texts) else [(h, t) for h, t in zip(hits, texts) if t in kept]
            hits, texts = [h for h, _ in pairs], [t for _, t in pairs]
        sources = [Source(h.node.metadata["doc"], h.node.metadata.get("title", ""), source_url(h.node),
                          h.node.metadata.get("kind", ""), round(float(h.score), 4), " ".join(t.split())[:160])
                   for h, t in zip(hits, texts)]
        yield {"type": "sources", "route": route, "sources": [asdict(s) for s in sources]}
        limit = max_new_tokens or self.max_new_tokens
        msgs = self.messages(question, texts, route, session_id)
        pieces: list[str] = []
        with self.lock:
            gen = self.generator
            for piece in gen.stream(msgs, limit):
                pieces.append(piece)
                if g is None:
                    yield {"type": "token", "text": piece}
        text = "".join(pieces).strip()
        if g is not None:
            verdict = g.check_output(text, "\n".join(texts))
            text = text if verdict.allowed else verdict.reason
            yield {"type": "token", "text": text}
        answer = Answer(text, sources, route, query=query, context=texts, session_id=session_id,
                        generator=getattr(gen, "name", type(gen).__name__))
        self._finish(question, answer, session_id)
        yield {"type": "done", "answer": answer}

    def answer(self, question: str, session_id: str = "default", max_new_tokens: int | None = None) -> Answer:
        """One turn (see `stream`), returned whole."""
        for event in self.stream(question, session_id, max_new_tokens):
            if event["type"] == "done":
                return event["answer"]
        raise RuntimeError("the turn ended without an answer")  # pragma: no cover

    def _finish(self, question: str, answer: Answer, session_id: str) -> None:
        self.history[session_id].append((question, answer.text))
        self._record(question, answer)

    def _record(self, question: str, answer: Answer) -> None:
        redact = self.guardrails.redact if self.guardrails is not None else (lambda s: s)
        record = {"session": answer.session_id, "route": answer.route, "question": redact(question),
                  "answer": redact(answer.text)}
        self.log.append(record)
        log.info("turn %s", record)

    def forget(self, session_id: str) -> None:
        """Drop one session's memory."""
        self.history.pop(session_id, None)
