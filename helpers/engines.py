"""The fast CPU engine of the local models: SmolLM2 exported to ONNX with int4 weights (chat) or
int8 weights (the tool model, plain and with its adapter merged in) and run by onnxruntime-genai,
behind the `generate` call the rest of the course already makes; `llm.default_variant` picks it.

    loaded = llm.causal_lm(variant="int4-ort")     # OrtCausalLM, the same tokenizer, the same info
    generation.generate_chat(loaded.model, loaded.tokenizer, "What is a KV cache?")

`OrtCausalLM.generate` takes what `transformers` generation takes on the greedy paths of the
course (prompt ids, `max_new_tokens`, `logits_processor` such as the call grammar, `stop_strings`
with a tokenizer, `stopping_criteria`, a `streamer`) and returns prompt + new ids as a tensor, so `LocalLLM`,
`agents.choose_call` and `generation.generate_chat` run on it unchanged. Logits processors work
through onnxruntime-genai's `get_logits`/`set_logits` (one numpy round trip per token).
The engine keeps the previous prompt's KV cache and reuses the longest shared prefix (see
`_prefilled`). `make models` builds the folders (`helpers.prepare.prepare_ort`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import config

PRECISIONS = ("int4", "int8")  # weight-only quantisation of the exports (MatMulNBits)


class _Config:
    """The few config fields callers read (`max_position_embeddings`, `vocab_size`)."""

    def __init__(self, genai: dict) -> None:
        self.max_position_embeddings = int(genai["model"]["context_length"])
        self.vocab_size = int(genai["model"]["vocab_size"])
        self.model_type = f"{genai['model']['type']} (onnxruntime-genai)"


class OrtCausalLM:
    """An onnxruntime-genai model folder with a `transformers`-like greedy `generate`."""

    batched = False  # one prompt per generate call (generation.generate_batch loops over rows)

    def __init__(self, folder: str | Path) -> None:
        import json

        import onnxruntime_genai as og
        import torch

        self.folder = Path(folder)
        if not (self.folder / "genai_config.json").is_file():
            from .models import ModelNotAvailableError

            raise ModelNotAvailableError(f"No onnxruntime-genai model at {self.folder}. Build it with: "
                                         f"{config.PREPARE_COMMAND}")
        self._og = og
        settings = og.Config(str(self.folder))  # the export leaves threads to onnxruntime: one, on these CPUs
        settings.overlay(json.dumps({"model": {"decoder": {"session_options": {
            "intra_op_num_threads": torch.get_num_threads()}}}}))
        self.model = og.Model(settings)
        genai = json.loads((self.folder / "genai_config.json").read_text())
        self.config = _Config(genai)
        self.eos_token_id = int(genai["model"]["eos_token_id"])
        self.device = torch.device("cpu")
        self.last_seconds: dict[str, float] = {}
        self.reuse_prefix = True  # keep the last prompt's KV cache and reuse its shared prefix (see _prefilled)
        self._generator: Any = None
        self._cached: list[int] = []  # prompt tokens whose keys and values the generator holds
        self._capacity = 0
        self._reused = 0

    def eval(self) -> OrtCausalLM:
        return self

    def generate(self, input_ids: Any, max_new_tokens: int = 32, logits_processor: Any = None,
                 stop_strings: Any = None, tokenizer: Any = None, streamer: Any = None,
                 eos_token_id: int | None = None, do_sample: bool = False, stopping_criteria: Any = None,
                 **ignored: Any) -> Any:
        """Greedy decoding of one prompt (a (1, T) tensor); returns (1, T + new) like transformers.
        `last_seconds` records the prefill and decode times of the call."""
        import numpy as np
        import torch

        if do_sample:
            raise ValueError("OrtCausalLM decodes greedily only; use the transformers model for sampling")
        if input_ids.shape[0] != 1:
            raise ValueError("OrtCausalLM generates for one prompt at a time")
        prompt = input_ids[0].tolist()
        eos = self.eos_token_id if eos_token_id is None else eos_token_id
        start = time.perf_counter()
        generator = self._prefilled(prompt, max_new_tokens)
        prefill = time.perf_counter() - start
        stops = [s for s in (stop_strings or []) if s] if tokenizer is not None else []
        new: list[int] = []
        processors = list(logits_processor or [])
        if streamer is not None:
            streamer.put(input_ids.cpu())
        while len(new) < max_new_tokens and not generator.is_done():
            if processors:
                scores = torch.from_numpy(np.array(generator.get_logits())[:, -1, :].copy())
                seq = torch.tensor([prompt + new])
                for proc in processors:
                    scores = proc(seq, scores)
                generator.set_logits(scores.numpy()[:, None, :].astype(np.float32))
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            new.append(token)
            if streamer is not None:
                streamer.put(torch.tensor([token]))
            if token == eos or (stops and any(s in tokenizer.decode(new[-8:]) for s in stops)):
                break
            if stopping_criteria and any(bool(c(torch.tensor([prompt + new]), None)[0]) for c in stopping_criteria):
                break
        if streamer is not None:
            streamer.end()
        self.last_seconds = {"prefill": prefill, "decode": time.perf_counter() - start - prefill,
                             "reused_tokens": self._reused}
        return torch.tensor([prompt + new])

    def _prefilled(self, prompt: list[int], max_new_tokens: int) -> Any:
        """A generator that has read `prompt`. When the previous prompt shares a prefix with it (a
        system prompt, a tool list, a conversation so far), the generator rewinds to the end of that
        prefix and reads only the rest: the KV cache of Day 4, kept across calls. The rest is then
        computed in a batch of another shape than a fresh prefill would use, so logits can differ
        in the last bits and a near-tie can flip a greedy token (`reuse_prefix = False` for
        bit-equal runs)."""
        og = self._og
        shared = 0
        if self.reuse_prefix and self._generator is not None and len(prompt) + max_new_tokens <= self._capacity:
            for a, b in zip(self._cached, prompt[:-1]):  # at least the last prompt token is read again
                if a != b:
                    break
                shared += 1
        if shared >= 8:
            self._generator.rewind_to(shared)
            self._generator.append_tokens(prompt[shared:])
        else:
            shared = 0
            self._capacity = min(self.config.max_position_embeddings, max(len(prompt) + max_new_tokens, 2304))
            params = og.GeneratorParams(self.model)
            params.set_search_options(max_length=self._capacity, do_sample=False)
            self._generator = og.Generator(self.model, params)
            self._generator.append_tokens(prompt)
        self._cached, self._reused = prompt, shared
        return self._generator


def ort_folder(adapter: str | None = None, precision: str = "int4") -> Path:
    """Where `make models` puts an onnxruntime-genai export of the SmolLM2 stand-in (with `adapter`,
    of the stand-in with that course adapter merged in) with `precision` weights."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    merged = f"+{adapter.split('/')[-1]}" if adapter else ""
    return config.OFFLINE_DIR / f"SmolLM2-135M-Instruct{merged}-ort-{precision}"
