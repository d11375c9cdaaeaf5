"""The local models behind llama-index: the chat LLM and `configure()` (the embedder is in
`helpers.embeddings`; `embed_model` and `EMBED_ID` are importable from here too).

    from helpers import llm
    llm.configure()                     # Settings.embed_model and Settings.llm point at local models
    answer = llm.local_llm(max_new_tokens=48).complete("What is a KV cache?")

One model cache for the whole course: `causal_lm` (a chat model on the course's engine, or int8, int4/int8 on
onnxruntime-genai, or with a LoRA adapter merged into a copy) and `embeddings.embedder` load
each model once per process, whoever asks.
Nothing here can reach OpenAI: `configure` sets both `Settings.embed_model` and `Settings.llm`
(a local model, or `NoLLM`, which raises a clear error when an LLM was not wanted).

`LocalLLM` is written on llama-index's `CustomLLM` rather than `HuggingFaceLLM`: the latter loads
its own copy of the model by name (a second copy beside the course's cache) and has no stop
strings or per-call statistics, which the RAG days measure.
"""
from __future__ import annotations

import copy
import dataclasses
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

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

from . import config
from .embeddings import embed_model
from .generation import greedy, template_ids
from .models import Loaded, ModelNotAvailableError, load_causal_lm, resolve

LLM_ID = config.DEFAULT_LLM  # offline: SmolLM2-135M-Instruct
MAX_NEW_TOKENS = 64
CONTEXT_WINDOW = 2048  # what the LLM is told it has: bounds the prompt (and the prefill time)
STOP = ("\n\n",)  # end an answer at its first blank line: small models tend to repeat themselves after it
CHUNK_SIZE = 256  # tokens; MiniLM reads at most 256 word pieces, so longer chunks would be truncated
CHUNK_OVERLAP = 32
VARIANTS = ("fp32", "int8", "int4-ort", "int8-ort")


# --------------------------------------------------------------------------- the model cache
def default_variant(hub_id: str = LLM_ID, tools: bool = False) -> str:
    """The engine `causal_lm` uses when none is named (`config.LLM_ENGINE`, env `LLMC_ENGINE`).

    With "auto": "fp32" (transformers; bf16/fp16 on a GPU) for every original, and for the offline
    SmolLM2 stand-in onnxruntime-genai, "int4-ort" for chat and "int8-ort" for the tool model
    (`tools=True`, Days 10-15): int4 weights wash out the tool adapter's LoRA update (tool choice
    0.23 against 0.50 in fp32 on Day 10's tasks), int8 keeps it (0.55); benchmarks/llm.csv."""
    engine = config.LLM_ENGINE
    if engine != "auto":
        if engine not in VARIANTS:
            raise ValueError(f"LLMC_ENGINE must be 'auto' or one of {VARIANTS}, not {engine!r}")
        return engine
    if resolve(hub_id).location != resolve(config.SMOLLM2_ID).location:
        return "fp32"
    return "int8-ort" if tools else "int4-ort"


def causal_lm(hub_id: str = LLM_ID, variant: str | None = None, adapter: str | None = None) -> Loaded:
    """(model, tokenizer, Resolved), loaded once per process and shared by every caller.

    `variant=None` is the course's engine for `hub_id` (`default_variant`: int4 on
    onnxruntime-genai for the offline stand-in, transformers for originals). `"fp32"` is the
    reference (transformers); `"int8"` a dynamically quantised copy (int8 weights in every Linear;
    CPU only); `"int4-ort"` the SmolLM2 stand-in exported with int4 weights and run by
    onnxruntime-genai (`helpers.engines`: greedy only, one prompt at a time).
    `adapter` is the id of a course adapter in `config.ADAPTERS`, merged into a copy of the weights
    (the plain model stays shared and unchanged; on onnxruntime-genai, a merged export built by
    `make models`); `info.adapter` records it."""
    variant = variant or default_variant(hub_id)
    return _causal_lm(hub_id, variant, adapter)  # positional: one cache entry however it was called


@lru_cache(maxsize=None)
def _causal_lm(hub_id: str, variant: str, adapter: str | None) -> Loaded:
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    if adapter is not None and adapter not in config.ADAPTERS:
        raise ValueError(f"unknown adapter {adapter!r}; known: {sorted(config.ADAPTERS)}")
    if adapter is not None:
        folder, script = config.ADAPTERS[adapter]
        if not (folder / "adapter_config.json").is_file():
            raise ModelNotAvailableError(
                f"The adapter {adapter} is missing (expected in {folder}). Restore it with "
                f"`git checkout models/llm-challenge` or rebuild it with `python {script}`.")
    if variant.endswith("-ort"):
        from transformers import AutoTokenizer

        from .engines import OrtCausalLM, ort_folder

        info = resolve(hub_id)
        if info.location != resolve(config.SMOLLM2_ID).location:
            raise ValueError(f"variant={variant!r} exists for the offline SmolLM2 stand-in only; {hub_id} resolved to "
                             f"{info.name} (use variant='fp32')")
        info = dataclasses.replace(info, adapter=adapter) if adapter else info
        model = OrtCausalLM(ort_folder(adapter, variant.removesuffix("-ort")))
        return Loaded(model, AutoTokenizer.from_pretrained(info.location), info)
    if variant == "int8":
        import torch

        base, tok, info = causal_lm(hub_id, "fp32", adapter)
        if base.device.type != "cpu":
            raise ValueError("variant='int8' (torch dynamic quantisation) runs on the CPU only; use fp32 on a GPU")
        with warnings.catch_warnings():  # torch.ao.quantization announces its future move to torchao
            warnings.simplefilter("ignore")
            return Loaded(torch.ao.quantization.quantize_dynamic(base, {torch.nn.Linear}, dtype=torch.qint8), tok, info)
    if adapter is not None:
        from peft import PeftModel

        base, tok, info = causal_lm(hub_id, variant)
        tuned = PeftModel.from_pretrained(copy.deepcopy(base), str(config.ADAPTERS[adapter][0])).merge_and_unload()
        return Loaded(tuned.eval(), tok, dataclasses.replace(info, adapter=adapter))
    return load_causal_lm(hub_id)


causal_lm.cache_clear = _causal_lm.cache_clear  # type: ignore[attr-defined]


def engine_label(variant: str) -> str:
    """How a variant runs, in words: what `configure` prints."""
    return {"fp32": "transformers", "int8": "transformers, int8 dynamic quantisation",
            "int4-ort": "onnxruntime-genai, int4 weights", "int8-ort": "onnxruntime-genai, int8 weights"}[variant]


def model_label(info: Any) -> str:
    """The name of what really runs: the hub id for an original, the stand-in's short name otherwise."""
    name = info.requested if info.is_original else info.name.split(" (")[0]
    return name + (f" + {info.adapter}" if info.adapter else "")


# --------------------------------------------------------------------------- llama-index LLMs
class LocalLLM(CustomLLM):
    """A local Hugging Face chat model as a llama-index LLM: chat template applied, greedy
    decoding, at most `max_new_tokens` new tokens, ending at any of `stop`. Every call is timed
    into `stats`. Build it with `local_llm()`."""

    model_name: str = Field(default=LLM_ID, description="the model that really runs (stand-in named as such)")
    max_new_tokens: int = Field(default=MAX_NEW_TOKENS, gt=0)
    context_window: int = Field(default=CONTEXT_WINDOW, gt=0)
    variant: str = Field(default="fp32", description="the engine: one of VARIANTS")
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
        ids = template_ids(self._tok, [{"role": m.role.value, "content": m.content or ""} for m in messages])
        limit = self.context_window - self.max_new_tokens
        return ids[:, -limit:] if ids.shape[1] > limit else ids  # keep the end (the question)

    def _generate(self, ids: Any, streamer: Any = None) -> str:
        start = time.perf_counter()
        stops = {"stop_strings": self.stop, "tokenizer": self._tok} if self.stop else {}
        new = greedy(self._model, self._tok, ids, self.max_new_tokens, streamer=streamer, **stops)
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
        return LLMMetadata(model_name="no-llm (llm.configure(llm=False))")

    def _fail(self) -> None:
        raise RuntimeError("No LLM is configured (helpers.llm.configure(llm=False) was called). "
                           "Call helpers.llm.configure() or pass llm=helpers.llm.local_llm().")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        self._fail()

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        self._fail()


def llm_kwargs(loaded: Loaded, max_new_tokens: int, context_window: int, stop: Sequence[str]) -> dict[str, Any]:
    """Constructor arguments of a `LocalLLM` (or subclass) for a loaded model."""
    model, _, info = loaded
    window = min(context_window, int(getattr(model.config, "max_position_embeddings", context_window)))
    return {"model_name": model_label(info), "max_new_tokens": max_new_tokens, "context_window": window,
            "stop": list(stop)}


def local_llm(hub_id: str = LLM_ID, max_new_tokens: int = MAX_NEW_TOKENS, variant: str | None = None,
              context_window: int = CONTEXT_WINDOW, stop: Sequence[str] = STOP) -> LocalLLM:
    """A llama-index LLM that runs `hub_id` locally (offline: SmolLM2-135M-Instruct).

    The weights come from `causal_lm` (one copy per process, shared by every `local_llm`) on the
    course's engine (`default_variant`: offline, int4 on onnxruntime-genai); `variant="fp32"` is
    the transformers reference, `variant="int8"` dynamically quantised Linear layers. Decoding is greedy, at most `max_new_tokens` long, and
    ends at any of `stop` (default: a blank line; pass `()` for multi-paragraph output)."""
    variant = variant or default_variant(hub_id)
    loaded = causal_lm(hub_id, variant)
    return LocalLLM(loaded.model, loaded.tokenizer, variant=variant,
                    **llm_kwargs(loaded, max_new_tokens, context_window, stop))


def configure(llm: bool = True, variant: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS,
              chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> None:
    """Point llama-index's global `Settings` at local models and the course's chunking:
    `embed_model` = bge-small-en-v1.5 (offline: MiniLM stand-in), `llm` = `local_llm(...)` or, with
    `llm=False`, a sentinel that raises when used. Prints what each hub id resolved to."""
    from llama_index.core import Settings

    Settings.embed_model = embed_model()
    if llm:
        Settings.llm = local_llm(max_new_tokens=max_new_tokens, variant=variant)
        print(f"llm    {LLM_ID} -> {Settings.llm.model_name}, {engine_label(Settings.llm.variant)}, "
              f"on {causal_lm(LLM_ID, Settings.llm.variant).model.device},"
              f" greedy, at most {max_new_tokens} new tokens")
    else:
        Settings.llm = NoLLM()
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
