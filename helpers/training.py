"""The LoRA fine-tuning loop of the course's training scripts (scripts/train_tool_lora.py for Day 10's tool
adapter, scripts/train_grounded_lora.py for Day 22's grounded adapter; Day 22 runs it live), and how they save.

    log = training.train_steps(model, lambda step: (ids, labels, mask), steps=80, lr=1e-3, warmup=8)
    training.save_adapter(model, out_dir, "HuggingFaceTB/SmolLM2-135M-Instruct")
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any


def pad_batch(pairs: Sequence[tuple[Any, Any]], pad_id: int) -> tuple[Any, Any, Any]:
    """(input_ids, labels) 1-D tensors -> right-padded (input_ids, labels, attention_mask); padded labels are -100."""
    import torch

    width = max(len(x) for x, _ in pairs)
    ids = torch.full((len(pairs), width), pad_id)
    labels = torch.full((len(pairs), width), -100)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for i, (x, y) in enumerate(pairs):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = x, y, 1
    return ids, labels, mask


def lr_factor(step: int, steps: int, warmup: int) -> float:
    """The learning-rate multiplier at `step`: linear warm-up over `warmup` steps, then linear decay to 5 %."""
    return min(1.0, (step + 1) / warmup) * max(0.05, 1 - step / steps)


def train_steps(model: Any, next_batch: Callable[[int], tuple[Any, Any, Any]], steps: int, lr: float, warmup: int,
                progress: Callable[[Iterable[int]], Iterable[int]] | None = None, every: int = 10) -> list[float]:
    """AdamW (no weight decay) on the trainable parameters of `model`, `lr_factor` schedule, gradients clipped at
    norm 1.0. `next_batch(step)` returns (input_ids, labels, attention_mask); labels of -100 are not trained.
    Returns the loss per step (4 decimals). Prints a line every `every` steps unless `progress` wraps the step
    range (e.g. tqdm). The model is left in eval mode."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters: wrap it with peft (get_peft_model) first")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, steps, warmup))
    model.train()
    log: list[float] = []
    start = time.time()
    for step in progress(range(steps)) if progress else range(steps):
        ids, labels, mask = next_batch(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        log.append(round(loss.item(), 4))
        if progress is None and (step % every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.4f}  tokens {int(mask.sum())}  {time.time() - start:6.0f} s",
                  flush=True)
    model.eval()
    return log


def save_adapter(model: Any, out: Path, base_id: str) -> None:
    """`model.save_pretrained(out)` for a peft model, with the base named by its hub id (not this machine's path)
    and without peft's template model card (the course writes its own)."""
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    config_file = out / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config["base_model_name_or_path"] = base_id
    config_file.write_text(json.dumps(config, indent=2))
    (out / "README.md").unlink(missing_ok=True)
