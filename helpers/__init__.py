"""Shared code of the LLM Challenge: 30 Days notebooks (only what several notebooks need)."""
from __future__ import annotations

import os as _os

# Idle OpenMP threads sleep instead of spinning: on a busy 2-core machine spinning threads made
# torch up to 12x slower (measured while building Day 9). Must be set before torch is imported.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .network import BLOCK_ENV as _BLOCK_ENV, block_network as _block_network

if _os.environ.get(_BLOCK_ENV, "").lower() in ("1", "true", "yes", "on"):
    _block_network()  # before any library can open a connection

from .config import DATA_DIR, MODELS_DIR, REPO_ROOT  # noqa: E402
from .models import (  # noqa: E402
    Loaded,
    ModelNotAvailableError,
    Resolved,
    chat_ids,
    generate_chat,
    load_causal_lm,
    load_clip,
    load_config,
    load_encoder,
    load_sentence_model,
    load_tokenizer,
    meta_model,
    resolve,
)
from .notebook import best_of, report, seed_everything, setup, timer  # noqa: E402
from .plots import plot_attention, plot_attention_grid  # noqa: E402

__all__ = [
    "DATA_DIR", "MODELS_DIR", "REPO_ROOT", "Loaded", "ModelNotAvailableError", "Resolved",
    "best_of", "chat_ids", "generate_chat", "load_causal_lm", "load_clip", "load_config",
    "load_encoder", "load_sentence_model", "load_tokenizer", "meta_model", "plot_attention",
    "plot_attention_grid", "report", "resolve", "seed_everything", "setup", "timer",
]
