"""The course's shared RAG layer (Days 6-9 and the agent days): corpus, golden questions,
local models for llama-index, and retrieval metrics.

    from helpers import rag
    rag.configure()                      # local embedder + local LLM in llama-index's Settings
    index = VectorStoreIndex.from_documents(rag.load_documents())
    rag.retrieval_metrics(index.as_retriever(similarity_top_k=5), rag.load_questions("dev"))

Nothing here can reach OpenAI: `configure` sets both `Settings.embed_model` and `Settings.llm`
(a local model, or a sentinel that raises a clear error when an LLM was not wanted).
"""
from __future__ import annotations

import json
import re
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from .config import DATA_DIR
from .models import Resolved, load_causal_lm, resolve

HANDBOOK_DIR = DATA_DIR / "handbook"
GOLDEN_DIR = DATA_DIR / "golden"
EMBED_ID = "BAAI/bge-small-en-v1.5"  # offline: the all-MiniLM-L6-v2 stand-in (384 dimensions too)
LLM_ID = "microsoft/Phi-3-mini-4k-instruct"  # offline: SmolLM2-135M-Instruct
CHUNK_SIZE = 256  # tokens; MiniLM reads at most 256 word pieces, so longer chunks would be truncated
CHUNK_OVERLAP = 32
MAX_NEW_TOKENS = 64
CONTEXT_WINDOW = 2048  # what the LLM is told it has: bounds the prompt (and the prefill time)
STOP = ("\n\n",)  # end an answer at its first blank line: small models tend to repeat themselves after it
QUESTION_TYPES = ("fact", "keyword", "paraphrase", "summary", "multi_hop", "unanswerable")
NOT_DOCUMENTS = ("LICENSE.md",)


# --------------------------------------------------------------------------- corpus
def _title(text: str, fallback: str) -> str:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first[2:].strip() if first.startswith("# ") else fallback


def load_documents(names: Iterable[str] | None = None, distractors: bool = True) -> list[Any]:
    """The handbook as llama-index `Document`s, one per Markdown file, in file-name order.

    `names` picks files (e.g. ``["09_rag_basics.md"]``); `distractors=False` drops the off-topic
    90_/91_ files. Metadata: ``doc`` (file name) and ``title`` (the ``# `` line). The embedder
    and the LLM see only the title (``doc`` is excluded), so metadata adds a few tokens per chunk,
    not a file name. The document id is the file name, which makes re-ingestion idempotent.
    """
    from llama_index.core import Document

    wanted = set(names) if names is not None else None
    docs = []
    for path in sorted(HANDBOOK_DIR.glob("*.md")):
        if path.name in NOT_DOCUMENTS or (wanted is not None and path.name not in wanted):
            continue
        if not distractors and path.name.startswith("9"):
            continue
        text = path.read_text(encoding="utf-8")
        docs.append(Document(
            id_=path.name,
            text=text,
            metadata={"doc": path.name, "title": _title(text, path.stem)},
            excluded_embed_metadata_keys=["doc"],
            excluded_llm_metadata_keys=["doc"],
        ))
    if wanted is not None and len(docs) != len(wanted):
        missing = sorted(wanted - {d.metadata["doc"] for d in docs})
        raise FileNotFoundError(f"handbook files not found: {missing}")
    return docs


def _read_jsonl(name: str) -> list[dict]:
    path = GOLDEN_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"data/golden/{name} is missing (the golden question set)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_questions(split: str | None = None, types: str | Iterable[str] | None = None) -> list[dict]:
    """Golden questions (dicts with id, question, answer, type, doc, section, gold_sentence,
    second, split), optionally only one split ("dev" or "test") and some types."""
    if split not in (None, "dev", "test"):
        raise ValueError(f"split must be 'dev', 'test' or None, not {split!r}")
    wanted = {types} if isinstance(types, str) else (set(types) if types is not None else None)
    if wanted is not None and not wanted <= set(QUESTION_TYPES):
        raise ValueError(f"unknown question types {sorted(wanted - set(QUESTION_TYPES))}; known: {QUESTION_TYPES}")
    return [q for q in _read_jsonl("questions.jsonl")
            if (split is None or q["split"] == split) and (wanted is None or q["type"] in wanted)]


def load_router_questions(split: str | None = None) -> list[dict]:
    """Router questions about 20_course_guide.md (id, question, route "summary"/"detail",
    section number or None, split)."""
    if split not in (None, "dev", "test"):
        raise ValueError(f"split must be 'dev', 'test' or None, not {split!r}")
    return [q for q in _read_jsonl("router_questions.jsonl") if split is None or q["split"] == split]


# --------------------------------------------------------------------------- models
@lru_cache(maxsize=None)
def _embedder(hub_id: str) -> tuple[Any, Resolved]:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    class CachedHuggingFaceEmbedding(HuggingFaceEmbedding):
        """`HuggingFaceEmbedding` that remembers query embeddings: evaluation loops ask the same
        questions of many retrievers."""

        _query_cache: dict = PrivateAttr(default_factory=dict)

        def _get_query_embedding(self, query: str) -> list[float]:
            if query not in self._query_cache:
                self._query_cache[query] = super()._get_query_embedding(query)
            return self._query_cache[query]

        def cache_queries(self, queries: Sequence[str]) -> None:
            """Embed many queries in one batch (much faster than one by one) into the cache."""
            todo = [q for q in dict.fromkeys(queries) if q not in self._query_cache]
            if todo:
                self._query_cache.update(zip(todo, self._embed(todo, prompt_name="query")))

    info = resolve(hub_id)
    # On the hub a bge id gets its query instruction automatically; a local path gets none.
    model = CachedHuggingFaceEmbedding(model_name=info.location, device="cpu", show_progress_bar=False)
    return model, info


def embed_model(hub_id: str = EMBED_ID, announce: bool = True) -> Any:
    """llama-index's `HuggingFaceEmbedding` for `hub_id`, resolved through `helpers.resolve`
    (offline: the MiniLM stand-in), with query embeddings cached. One instance per process."""
    model, info = _embedder(hub_id)
    if announce:
        print(("embed  " if info.is_original else "embed  NOTE: ") + info.describe())
    return model


def causal_lm(hub_id: str = LLM_ID, quantize: bool = False) -> tuple[Any, Any, Resolved]:
    """(model, tokenizer, Resolved) behind `local_llm`: loaded once per process and shared."""
    return _causal_lm(hub_id, quantize)


@lru_cache(maxsize=None)
def _causal_lm(hub_id: str, quantize: bool) -> tuple[Any, Any, Resolved]:
    if quantize:
        import torch

        base, tok, info = _causal_lm(hub_id, False)
        # int8 weights for every nn.Linear, activations quantised on the fly: a copy of the model.
        with warnings.catch_warnings():  # torch.ao.quantization announces its future move to torchao
            warnings.simplefilter("ignore")
            return torch.ao.quantization.quantize_dynamic(base, {torch.nn.Linear}, dtype=torch.qint8), tok, info
    return load_causal_lm(hub_id)


def _classes() -> tuple[type, type]:
    """Build the two llama-index LLM classes on first use (keeps `import helpers.rag` cheap)."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    from llama_index.core.base.llms.types import (
        ChatMessage,
        ChatResponse,
        ChatResponseGen,
        CompletionResponse,
        CompletionResponseGen,
        LLMMetadata,
        MessageRole,
    )
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
    from llama_index.core.llms.custom import CustomLLM

    class LocalLLM(CustomLLM):
        """A local Hugging Face chat model as a llama-index LLM: chat template applied, greedy
        decoding, at most `max_new_tokens` new tokens. Every call is timed into `stats`."""

        model_name: str = Field(default=LLM_ID, description="hub id this model stands for")
        max_new_tokens: int = Field(default=MAX_NEW_TOKENS, gt=0)
        context_window: int = Field(default=CONTEXT_WINDOW, gt=0)
        variant: str = Field(default="fp32", description="fp32 or int8 (dynamic quantisation)")
        stop: list[str] = Field(default_factory=lambda: list(STOP), description="strings that end generation")
        _model: Any = PrivateAttr()
        _tok: Any = PrivateAttr()
        _stats: list = PrivateAttr(default_factory=list)

        def __init__(self, model: Any, tokenizer: Any, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._model, self._tok = model, tokenizer

        @classmethod
        def class_name(cls) -> str:
            return "LocalLLM"

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(context_window=self.context_window, num_output=self.max_new_tokens,
                               is_chat_model=True, model_name=self.model_name)

        @property
        def stats(self) -> list[dict]:
            """One dict per generation: prompt_tokens, new_tokens, seconds."""
            return self._stats

        def _ids(self, messages: Sequence[ChatMessage]) -> Any:
            chat = [{"role": m.role.value, "content": m.content or ""} for m in messages]
            out = self._tok.apply_chat_template(chat, add_generation_prompt=True, return_tensors="pt")
            ids = out if hasattr(out, "shape") else out["input_ids"]
            limit = self.context_window - self.max_new_tokens
            return ids[:, -limit:] if ids.shape[1] > limit else ids  # keep the end (the question)

        def _generate(self, ids: Any, streamer: Any = None) -> str:
            import torch

            start = time.perf_counter()
            with torch.no_grad():
                stops = {"stop_strings": self.stop, "tokenizer": self._tok} if self.stop else {}
                out = self._model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                           do_sample=False, pad_token_id=self._tok.eos_token_id, streamer=streamer,
                                           **stops)
            new = out[0, ids.shape[1]:]
            self._stats.append({"prompt_tokens": int(ids.shape[1]), "new_tokens": int(new.shape[0]),
                                "seconds": time.perf_counter() - start})
            text = self._tok.decode(new, skip_special_tokens=True)
            for stop in self.stop:
                text = text.split(stop)[0]
            return text.strip()

        def _stream(self, ids: Any) -> Iterator[str]:
            from transformers import TextIteratorStreamer

            streamer = TextIteratorStreamer(self._tok, skip_prompt=True, skip_special_tokens=True)
            worker = threading.Thread(target=self._generate, args=(ids, streamer))
            worker.start()
            yield from streamer
            worker.join()

        @staticmethod
        def _user(prompt: str) -> list[ChatMessage]:
            return [ChatMessage(role=MessageRole.USER, content=prompt)]

        @llm_chat_callback()
        def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
            text = self._generate(self._ids(messages))
            return ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text))

        @llm_chat_callback()
        def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
            def gen() -> ChatResponseGen:
                text = ""
                for delta in self._stream(self._ids(messages)):
                    text += delta
                    yield ChatResponse(message=ChatMessage(role=MessageRole.ASSISTANT, content=text), delta=delta)
            return gen()

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            return CompletionResponse(text=self._generate(self._ids(self._user(prompt))))

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
            def gen() -> CompletionResponseGen:
                text = ""
                for delta in self._stream(self._ids(self._user(prompt))):
                    text += delta
                    yield CompletionResponse(text=text, delta=delta)
            return gen()

    class NoLLM(CustomLLM):
        """Sentinel for `configure(llm=False)`: any call raises, so nothing falls back to OpenAI."""

        @classmethod
        def class_name(cls) -> str:
            return "NoLLM"

        @property
        def metadata(self) -> LLMMetadata:
            return LLMMetadata(model_name="no-llm (rag.configure(llm=False))")

        def _fail(self) -> None:
            raise RuntimeError("No LLM is configured (helpers.rag.configure(llm=False) was called). "
                               "Call helpers.rag.configure() or pass llm=helpers.rag.local_llm().")

        @llm_completion_callback()
        def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
            self._fail()

        @llm_completion_callback()
        def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
            self._fail()

    _CLASSES = (LocalLLM, NoLLM)
    return _CLASSES


_CLASSES: tuple[type, type] | None = None


def local_llm(hub_id: str = LLM_ID, max_new_tokens: int = MAX_NEW_TOKENS, quantize: bool = False,
              context_window: int = CONTEXT_WINDOW, stop: Sequence[str] = STOP) -> Any:
    """A llama-index LLM that runs `hub_id` locally (offline: SmolLM2-135M-Instruct).

    The weights are loaded once per process and shared by every `local_llm` object;
    `quantize=True` gives dynamically quantised int8 Linear layers (a second, smaller copy:
    faster on CPUs, but it degrades SmolLM2's answers badly, see Day 6). Decoding is greedy,
    at most `max_new_tokens` long, and ends at any of `stop` (default: a blank line; pass `()`
    for multi-paragraph output). `.stats` records each call.
    """
    LocalLLM, _ = _classes()
    model, tok, info = _causal_lm(hub_id, quantize)
    window = min(context_window, int(getattr(model.config, "max_position_embeddings", context_window)))
    return LocalLLM(model, tok, model_name=hub_id, max_new_tokens=max_new_tokens, context_window=window,
                    variant="int8" if quantize else "fp32", stop=list(stop))


def no_llm() -> Any:
    """The sentinel LLM that raises on use (for retrieval-only work)."""
    return _classes()[1]()


def configure(llm: bool = True, quantize: bool = False, max_new_tokens: int = MAX_NEW_TOKENS,
              chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> None:
    """Point llama-index's global `Settings` at local models and the course's chunking:
    `embed_model` = bge-small-en-v1.5 (offline: MiniLM stand-in), `llm` = `local_llm(...)` or, with
    `llm=False`, a sentinel that raises when used. Prints what each hub id resolved to."""
    from llama_index.core import Settings

    Settings.embed_model = embed_model()
    if llm:
        Settings.llm = local_llm(max_new_tokens=max_new_tokens, quantize=quantize)
        info = _causal_lm(LLM_ID, False)[2]
        kind = "" if info.is_original else "STAND-IN "
        print(f"llm    {LLM_ID} -> {kind}{info.name.split(' (')[0]}, {Settings.llm.variant},"
              f" greedy, at most {max_new_tokens} new tokens")
    else:
        Settings.llm = no_llm()
        print("llm    none (retrieval only; any LLM call raises)")
    Settings.chunk_size = chunk_size
    Settings.chunk_overlap = chunk_overlap


def throughput(stats: Sequence[dict]) -> dict[str, float]:
    """Summary of `LocalLLM.stats`: calls, new tokens per second, seconds per call, prompt tokens."""
    if not stats:
        return {"calls": 0, "tokens_per_s": float("nan"), "s_per_call": float("nan"), "prompt_tokens": float("nan")}
    seconds = sum(s["seconds"] for s in stats)
    return {"calls": len(stats), "tokens_per_s": sum(s["new_tokens"] for s in stats) / seconds,
            "s_per_call": seconds / len(stats), "prompt_tokens": sum(s["prompt_tokens"] for s in stats) / len(stats)}


# --------------------------------------------------------------------------- retrieval metrics
@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower case, whitespace collapsed, Markdown emphasis/code marks removed: for containment tests."""
    return " ".join(re.sub(r"[*_`]", "", text).lower().split())


@lru_cache(maxsize=None)
def _doc_text(doc: str) -> str:
    return (HANDBOOK_DIR / doc).read_text(encoding="utf-8")


def gold_refs(question: dict) -> list[tuple[str, str]]:
    """(doc, gold_sentence) pairs a question needs: one, two for multi_hop, none if unanswerable."""
    refs = []
    if question.get("gold_sentence"):
        refs.append((question["doc"], question["gold_sentence"]))
    second = question.get("second") or None
    if second:
        refs.append((second["doc"], second["gold_sentence"]))
    return refs


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
    pos = _doc_text(doc).find(sentence)
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
    if _embedder.cache_info().currsize:
        _embedder(EMBED_ID)[0].cache_queries([q["question"] for q in questions])


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
