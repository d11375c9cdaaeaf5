"""The one generation path of the course: chat template -> token ids -> greedy (or sampled) decoding.

Every helper and notebook that generates with a local transformers model goes through here, so
device placement (inputs follow `model.device`), the chat template and the decoding settings
are written once.

    ids = generation.chat_ids(tok, "What is a KV cache?")
    text = generation.generate_chat(model, tok, "What is a KV cache?", max_new_tokens=48)
    texts, proc = generation.generate_batch(model, tok, [ids_a, ids_b])   # shared prefix prefilled once
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def template_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> Any:
    """Token ids (1, T) of a conversation in the model's chat template, with the generation prompt.

    Messages are {"role", "content"} dicts. Works with transformers 4 (a tensor) and 5 (a dict)."""
    out = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, return_tensors="pt")
    return out if hasattr(out, "shape") else out["input_ids"]


def chat_ids(tokenizer: Any, user: str, system: str | None = None) -> Any:
    """Token ids (1, T) of a one-turn chat. Pass `system` to replace the template's default system
    prompt (SmolLM2's template otherwise inserts "You are a helpful AI assistant named SmolLM")."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return template_ids(tokenizer, messages)


def greedy(model: Any, tokenizer: Any, ids: Any, max_new_tokens: int, /, **kwargs: Any) -> Any:
    """`model.generate` on `ids` (moved to the model's device), greedy unless kwargs say otherwise;
    returns only the new token ids of the first row, on the CPU."""
    import torch

    ids = ids.to(model.device)
    settings = {"do_sample": False, "top_p": None, "top_k": None, "temperature": None} | kwargs
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.eos_token_id, **settings)
    return out[0, ids.shape[1]:].cpu()


def generate_chat(model: Any, tokenizer: Any, user: str, max_new_tokens: int = 48, system: str | None = None) -> str:
    """Greedy answer of a chat model to one user message (deterministic)."""
    new = greedy(model, tokenizer, chat_ids(tokenizer, user, system), max_new_tokens)
    return tokenizer.decode(new, skip_special_tokens=True).strip()


def common_prefix(rows: Sequence[Any]) -> int:
    """Length of the longest common prefix of 1-D id tensors, leaving every row at least one own token."""
    n = 0
    while all(len(r) > n + 1 and r[n] == rows[0][n] for r in rows):
        n += 1
    return n


class StopUnlessStartsWith:
    """A stopping criterion: a row stops once its reply (from `start`) begins with anything but
    `prefix` (e.g. "{" for a JSON reply), so free-form rows do not run to the token limit."""

    def __init__(self, tokenizer: Any, start: int, prefix: str = "{") -> None:
        self.tok, self.start, self.prefix = tokenizer, start, prefix

    def __call__(self, ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        texts = [self.tok.decode(row[self.start:], skip_special_tokens=True).lstrip() for row in ids]
        return torch.tensor([bool(t) and not t.startswith(self.prefix) for t in texts], device=ids.device)


def generate_batch(model: Any, tokenizer: Any, rows: Sequence[Any], max_new_tokens: int = 48,
                   make_processor: Callable[[int], Any] | None = None, stop_prefix: str | None = None,
                   **sampling: Any) -> tuple[list[str], Any]:
    """Generate for many prompts at once (1-D id tensors, e.g. `template_ids(...)[0]`).

    The prompts' shared prefix (a system prompt, a tool list) is prefilled once and its KV cache
    copied to every row; each row is laid out as [shared prefix][left padding][own tokens].
    `make_processor(width)` builds a logits processor for prompts of that padded width (a grammar);
    `stop_prefix` stops a row whose reply starts otherwise. Greedy unless `sampling` says
    `do_sample=True`. Returns the decoded replies and the processor (or None).
    An engine that decodes one prompt at a time (`OrtCausalLM.batched` is False) runs the rows one
    after another, each with its own processor; the last row's processor is returned."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    if not getattr(model, "batched", True):
        texts, processor = [], None
        for row in rows:
            processor = make_processor(len(row)) if make_processor else None
            stops = [StopUnlessStartsWith(tokenizer, len(row), stop_prefix)] if stop_prefix else []
            new = greedy(model, tokenizer, row[None, :], max_new_tokens, stopping_criteria=stops,
                         logits_processor=[processor] if processor else None, **sampling)
            texts.append(tokenizer.decode(new, skip_special_tokens=True).strip())
        return texts, processor

    dev = model.device
    rows = [r.to(dev) for r in rows]
    shared = common_prefix(rows)
    with torch.no_grad():
        cache = model(rows[0][None, :shared]).cache
    cache.batch_repeat_interleave(len(rows))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.eos_token_id, device=dev)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=dev)
    for i, r in enumerate(rows):
        ids[i, :shared], ids[i, width - len(r) + shared:] = r[:shared], r[shared:]
        mask[i, :shared], mask[i, width - len(r) + shared:] = 1, 1
    processor = make_processor(width) if make_processor else None
    stops = [StopUnlessStartsWith(tokenizer, width, stop_prefix)] if stop_prefix else []
    settings = {"do_sample": False, "top_p": None} | sampling
    with torch.no_grad():
        out = model.generate(ids, attention_mask=mask, cache=cache, max_new_tokens=max_new_tokens,
                             pad_token_id=tokenizer.eos_token_id,
                             logits_processor=LogitsProcessorList([processor] if processor else []),
                             stopping_criteria=StoppingCriteriaList(stops), **settings)
    return [tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out], processor
