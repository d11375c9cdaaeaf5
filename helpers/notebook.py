"""What every notebook's setup cell and results cell share: seeds, threads, versions, RESULT lines."""
from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import random
import time
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from .network import BLOCK_ENV, block_network, hub_reachable

SEED = 0
VERSIONED = ("torch", "transformers", "sentence-transformers", "llama-index-core", "trulens-core")


def quiet() -> None:
    """Silence progress bars and chatty loggers whose output would clutter (and destabilise)
    notebook outputs."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*Pydantic.*")
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def seed_everything(seed: int = SEED) -> None:
    """Fix Python, NumPy and torch seeds."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def versions(packages: Iterable[str] = VERSIONED) -> dict[str, str]:
    """Installed versions of `packages` ('-' when absent)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def profile() -> str:
    """'online' when the Hub answers, else 'offline'."""
    return "online" if hub_reachable() else "offline"


def setup(day: int, models: Iterable[str] = (), threads: int = 2, seed: int = SEED) -> dict[str, object]:
    """The one call of every setup cell: quiet logs, fix seeds and threads, print the profile,
    the library versions and which model each hub id resolves to on this run (nothing is loaded).

    Returns a dict with the profile and the `Resolved` records by hub id."""
    from .models import ModelNotAvailableError, announce, resolve

    if os.environ.get(BLOCK_ENV, "").lower() in ("1", "true", "yes", "on"):
        block_network()
    quiet()
    seed_everything(seed)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover
        pass
    prof = profile()
    print(f"Day {day} | profile: {prof} | seed {seed} | {threads} CPU threads")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()))
    resolved = {}
    for hub_id in models:
        try:
            resolved[hub_id] = resolve(hub_id)
            announce(resolved[hub_id], "model  ")
        except ModelNotAvailableError as exc:
            print(f"model  {hub_id}: NOT AVAILABLE - {exc}")
            raise
    return {"profile": prof, "models": resolved}


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def report(**results: object) -> dict[str, object]:
    """Print one `RESULT name = value` line per keyword, in order, and return them."""
    for name, value in results.items():
        print(f"RESULT {name} = {_fmt(value)}")
    return results


@dataclass
class Timing:
    """Elapsed wall-clock seconds of a `timer()` block."""

    seconds: float = float("nan")


@contextmanager
def timer() -> Iterator[Timing]:
    """`with timer() as t: ...` then `t.seconds`. Use ratios of timings from one run."""
    t = Timing()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    """The fastest of `repeat` wall-clock timings of `fn()` in seconds (less noisy than one)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


SMOKE_ENV = "LLMC_SMOKE_ORIGINAL"  # set by the original-path smoke test (fake "original" folders)


def expect(info: object, standin: bool, message: str, original: bool | None = None) -> None:
    """A check whose claim depends on which model ran (`info`, the `Resolved` record of the load).

    With a stand-in, `standin` must hold; with the original, `original` must (None: the lesson
    makes no checked claim about the original, and the output says so). Under the original-path
    smoke test (`LLMC_SMOKE_ORIGINAL=1`, where "originals" are stand-in files in `models/<hub id>`)
    a failed original expectation is reported, not raised: the smoke test proves the original
    branches run, not the original's quality. Prints one "expect (...)" line."""
    is_original = bool(getattr(info, "is_original", False))
    claim, who = (original, "original") if is_original else (standin, "stand-in")
    if claim is None:
        line = f"expect ({who}): no checked claim for the original model here; {message}"
    elif claim:
        line = f"expect ({who}): holds; {message}"
    elif is_original and os.environ.get(SMOKE_ENV) == "1":
        line = f"expect ({who}): NOT MET (smoke run with a fake original, not raised); {message}"
    else:
        raise AssertionError(f"{message} (checked for the {who} model: {getattr(info, 'name', info)})")
    print(line)
