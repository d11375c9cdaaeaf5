"""Train the course's tiny T5 stand-in: number words <-> digits, both ways, with T5 task prefixes (deterministic).

    python scripts/train_tiny_t5.py                          # -> models/llm-challenge/tiny-t5-numbers/
    python scripts/train_tiny_t5.py --steps 300 --out /tmp/tiny-t5   # a quicker try

What it makes is loaded with exactly the code used for `google-t5/t5-small`:

    model = AutoModelForSeq2SeqLM.from_pretrained(folder)       # a T5ForConditionalGeneration
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer(["digits: three hundred and twelve"], return_tensors="pt", padding=True)
    tokenizer.batch_decode(model.generate(**ids, max_new_tokens=16), skip_special_tokens=True)  # ['312']

* Task, written the T5 way (text in, text out, a task prefix): `"digits: <English words>"` -> the digits
  and `"words: <digits>"` -> the English words, for every whole number 0..9999 in British English
  ("three thousand and five", "seven hundred and seventy-seven").
* Split: the 10,000 numbers shuffled with `numpy.random.default_rng(0)`; the first 1,000 are the test
  set, the next 500 the dev set, the remaining 8,500 train (both directions of each). Test and dev
  numbers are never seen in training, in either direction; they are written to `heldout.json`.
* Tokenizer: a word-level `tokenizers` vocabulary with T5's conventions (`<pad>` = 0 is also the
  decoder start, `</s>` = 1 is appended to every input, `▁` marks a word start as in T5's
  SentencePiece, digits are one token each), saved as `tokenizer.json`: `AutoTokenizer` loads it offline.
* Model: `T5ForConditionalGeneration` (T5 v1: relative position buckets, ReLU feed-forward, RMS
  LayerNorm, tied embeddings), 2 encoder + 2 decoder layers of width 64, 4 heads, feed-forward 256.
* Training: AdamW, linear warmup then cosine decay, teacher forcing with the library's own loss
  (labels shifted right inside the model). Every `--log-every` steps the greedy exact match on a fixed
  quarter of the dev pairs is logged (every 4th pair; pairs alternate direction, so these are words -> digits).
  The last line printed is
  `FINAL test_digits=... test_words=... steps=... seconds=...`: greedy exact match on the test numbers.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "models" / "llm-challenge" / "tiny-t5-numbers"
N_NUMBERS, N_TEST, N_DEV = 10_000, 1_000, 500
PREFIX_DIGITS, PREFIX_WORDS = "digits: ", "words: "
ARCH = dict(d_model=64, d_kv=16, d_ff=256, num_layers=2, num_decoder_layers=2, num_heads=4,
            relative_attention_num_buckets=16, relative_attention_max_distance=32, feed_forward_proj="relu")
SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
         " sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


# ----------------------------------------------------------------------------- data
def number_words(n: int) -> str:
    """British English words for 0 <= n <= 9999: 312 -> 'three hundred and twelve'."""
    if not 0 <= n < 10_000:
        raise ValueError(n)
    if n < 20:
        return UNITS[n]
    if n < 100:
        return TENS[n // 10] + (f"-{UNITS[n % 10]}" if n % 10 else "")
    if n < 1000:
        return f"{UNITS[n // 100]} hundred" + (f" and {number_words(n % 100)}" if n % 100 else "")
    rest = n % 1000
    head = f"{UNITS[n // 1000]} thousand"
    if not rest:
        return head
    return f"{head} and {number_words(rest)}" if rest < 100 else f"{head} {number_words(rest)}"


def pairs(numbers) -> list[tuple[str, str]]:
    """Both directions of each number: ('digits: three hundred and twelve', '312'), ('words: 312', ...)."""
    out = []
    for n in numbers:
        out.append((PREFIX_DIGITS + number_words(n), str(n)))
        out.append((PREFIX_WORDS + str(n), number_words(n)))
    return out


def split_numbers(seed: int = 0) -> dict[str, list[int]]:
    order = np.random.default_rng(seed).permutation(N_NUMBERS).tolist()
    return {"test": sorted(order[:N_TEST]), "dev": sorted(order[N_TEST:N_TEST + N_DEV]),
            "train": sorted(order[N_TEST + N_DEV:])}


# ----------------------------------------------------------------------------- tokenizer
def make_tokenizer():
    """A word-level tokenizer with T5's conventions, as a transformers fast tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),  # '▁' starts a word, as in T5
        pre_tokenizers.Split(Regex("[-:]"), behavior="isolated"),
        pre_tokenizers.Digits(individual_digits=True),
    ])
    texts = [t for n in range(N_NUMBERS) for t in (PREFIX_DIGITS + number_words(n), PREFIX_WORDS + str(n))]
    pieces = sorted({p for t in texts for p, _ in pre.pre_tokenize_str(t)})
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *pieces])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


# ----------------------------------------------------------------------------- model
def make_model(vocab_size: int, dropout: float = 0.0):
    from transformers import GenerationConfig, T5Config, T5ForConditionalGeneration

    cfg = T5Config(vocab_size=vocab_size, dropout_rate=dropout, pad_token_id=0, eos_token_id=1,
                   decoder_start_token_id=0, tie_word_embeddings=True, **ARCH)
    cfg.architectures = ["T5ForConditionalGeneration"]
    model = T5ForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(decoder_start_token_id=0, eos_token_id=1, pad_token_id=0,
                                               max_new_tokens=16)
    return model


def encode(tokenizer, rows):
    src = tokenizer([s for s, _ in rows], return_tensors="pt", padding=True)
    labels = tokenizer([t for _, t in rows], return_tensors="pt", padding=True)["input_ids"]
    labels[labels == tokenizer.pad_token_id] = -100
    return src["input_ids"], src["attention_mask"], labels


@torch.no_grad()
def exact_match(model, tokenizer, rows, batch: int = 250) -> list[bool]:
    """Greedy generation; True where the output equals the target exactly."""
    model.eval()
    hits = []
    for i in range(0, len(rows), batch):
        chunk = rows[i:i + batch]
        enc = tokenizer([s for s, _ in chunk], return_tensors="pt", padding=True)
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
        hits += [p == t for p, (_, t) in zip(tokenizer.batch_decode(out, skip_special_tokens=True), chunk)]
    return hits


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64, help="examples per step")
    ap.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=500)
    ap.add_argument("--dropout", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    t_start, c_start = time.perf_counter(), time.process_time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    split = split_numbers(args.seed)
    tokenizer = make_tokenizer()
    train_rows, dev_rows, test_rows = (pairs(split[k]) for k in ("train", "dev", "test"))
    x, mask, labels = encode(tokenizer, train_rows)
    model = make_model(len(tokenizer), args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"T5ForConditionalGeneration {ARCH}: {n_params:,} parameters, vocabulary {len(tokenizer)};"
          f" {len(train_rows)} training pairs, source length {x.shape[1]}, target length {labels.shape[1]}", flush=True)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        progress = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    gen = torch.Generator().manual_seed(args.seed)
    history = []
    model.train()
    running, t0 = 0.0, time.perf_counter()
    for step in range(args.steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        idx = torch.randint(0, len(train_rows), (args.batch,), generator=gen)
        m = mask[idx]
        keep = int(m.sum(1).max())  # trim padding columns of this batch
        lab = labels[idx]
        lab = lab[:, : int((lab != -100).sum(1).max())]
        loss = model(input_ids=x[idx, :keep], attention_mask=m[:, :keep], labels=lab).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += loss.item()
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            n = args.log_every if (step + 1) % args.log_every == 0 else (step + 1) % args.log_every
            dev_hits = exact_match(model, tokenizer, dev_rows[::4])  # a fixed quarter of dev (pairs alternate direction: words -> digits only)
            model.train()
            row = {"step": step + 1, "train_loss": running / n, "dev_exact": sum(dev_hits) / len(dev_hits),
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            print(f"step {row['step']:5d}  train loss {row['train_loss']:.4f}  dev exact match {row['dev_exact']:.3f}"
                  f"  {row['seconds']:.0f}s", flush=True)
            running = 0.0
    train_seconds = time.perf_counter() - t0

    out_dir: Path = args.out
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    heldout = {"note": "numbers never seen in training (either direction); test for reported numbers, dev for choices",
               "test": [[n, number_words(n)] for n in split["test"]],
               "dev": [[n, number_words(n)] for n in split["dev"]]}
    (out_dir / "heldout.json").write_text(json.dumps(heldout, separators=(",", ":")) + "\n", encoding="utf-8")

    # Measure the saved files as the course loads them.
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    loaded = AutoModelForSeq2SeqLM.from_pretrained(out_dir).eval()
    tok2 = AutoTokenizer.from_pretrained(out_dir)
    result = {"n_params": n_params, "vocab": len(tokenizer), "steps": args.steps, "train_seconds": train_seconds,
              "device": f"CPU ({torch.get_num_threads()} thread{'s' if torch.get_num_threads() > 1 else ''},"
                        f" {platform.processor() or platform.machine()})"}
    examples = {}
    for direction, prefix in (("digits", PREFIX_DIGITS), ("words", PREFIX_WORDS)):
        for name, rows in (("dev", dev_rows), ("test", test_rows)):
            rows = [r for r in rows if r[0].startswith(prefix)]
            hits = exact_match(loaded, tok2, rows)
            k = sum(hits)
            result[f"{name}_{direction}"] = {"k": k, "n": len(hits), "rate": k / len(hits),
                                             "wilson95": [round(v, 4) for v in wilson(k, len(hits))]}
            if name == "test":
                misses = [r for r, h in zip(rows, hits) if not h][:3]
                enc = tok2([s for s, _ in misses], return_tensors="pt", padding=True) if misses else None
                got = tok2.batch_decode(loaded.generate(**enc, max_new_tokens=16), skip_special_tokens=True) if misses else []
                examples[direction] = [(s, t, g) for (s, t), g in zip(misses, got)]
    result["seconds"] = time.perf_counter() - t_start
    result["cpu_seconds"] = time.process_time() - c_start
    write_readme(out_dir, args, split, result, history, examples, tok2)
    size_mb = sum(f.stat().st_size for f in out_dir.iterdir()) / 1e6
    print(f"saved {out_dir} ({size_mb:.1f} MB)")
    print(json.dumps({k: v for k, v in result.items() if k.startswith(("dev_", "test_"))}))
    print(f"FINAL test_digits={result['test_digits']['rate']:.3f} test_words={result['test_words']['rate']:.3f}"
          f" steps={args.steps} seconds={result['seconds']:.0f} cpu_seconds={result['cpu_seconds']:.0f}", flush=True)
    return result


def write_readme(out_dir: Path, args, split, r, history, examples, tokenizer) -> None:
    import transformers

    def rate(key):
        d = r[key]
        lo, hi = d["wilson95"]
        return f"{d['k']}/{d['n']} = **{d['rate']:.3f}** (95% Wilson [{lo:.3f}, {hi:.3f}])"

    hist = "\n".join(f"| {h['step']:,} | {h['train_loss']:.4f} | {h['dev_exact']:.3f} | {h['seconds']:.0f} |" for h in history)
    misses = "\n".join(f"{d}: {s!r} -> {g!r} (expected {t!r})" for d, rows in examples.items() for s, t, g in rows)
    sample = "digits: seven thousand and forty-two"
    pieces = tokenizer.convert_ids_to_tokens(tokenizer(sample)["input_ids"])
    text = f"""# tiny-t5-numbers

A tiny `T5ForConditionalGeneration` this course trained to turn English number words into digits and
back: the offline stand-in for `google-t5/t5-small`. Same class, same encoder-decoder layout (a
bidirectional encoder; a decoder with causal self-attention plus cross-attention to the encoder),
same T5 conventions (relative position buckets, RMS LayerNorm, tied embeddings, `<pad>` as the decoder
start, `</s>` closing every input, task prefixes), but {r['n_params']/1e6:.2f}M parameters, a
{r['vocab']}-token word vocabulary and one narrow task: it does not translate or summarise English.

```python
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
model = AutoModelForSeq2SeqLM.from_pretrained("models/llm-challenge/tiny-t5-numbers")
tokenizer = AutoTokenizer.from_pretrained("models/llm-challenge/tiny-t5-numbers")
ids = tokenizer(["digits: three hundred and twelve", "words: 4051"], return_tensors="pt", padding=True)
tokenizer.batch_decode(model.generate(**ids, max_new_tokens=16), skip_special_tokens=True)
```

`helpers.load_seq2seq("google-t5/t5-small")` loads it offline, announced as a STAND-IN.

## Model

| | |
|---|---|
| encoder / decoder layers | {ARCH['num_layers']} / {ARCH['num_decoder_layers']} |
| width / heads / feed-forward | {ARCH['d_model']} / {ARCH['num_heads']} (of {ARCH['d_kv']}) / {ARCH['d_ff']} (ReLU) |
| relative position buckets | {ARCH['relative_attention_num_buckets']} (max distance {ARCH['relative_attention_max_distance']}) |
| vocabulary | {r['vocab']} word-level tokens (`tokenizer.json`; `{sample}` -> {pieces}) |
| parameters | {r['n_params']:,} |
| stored as | float32 safetensors |

## Data

* Every whole number 0..9999 in British English words ("three thousand and five", "seven hundred and
  seventy-seven"), in both directions with T5-style prefixes: `digits: <words>` -> `<digits>` and
  `words: <digits>` -> `<words>`.
* The numbers shuffled with `numpy.random.default_rng({args.seed})`: {len(split['test']):,} test,
  {len(split['dev']):,} dev, {len(split['train']):,} train ({2 * len(split['train']):,} training pairs).
  Dev and test numbers never occur in training in either direction; both lists are in `heldout.json`.
  Dev was watched during training; test was measured once, on the saved files.

## Training

* {args.steps:,} steps of {args.batch} random training pairs, AdamW (betas 0.9/0.98, weight decay
  0.01), peak learning rate {args.lr}, {args.warmup} warmup steps then cosine decay to 0, gradient
  clipping 1.0, dropout {args.dropout}, float32, seed {args.seed}.
* Device: {r['device']}: **{r['cpu_seconds']:.0f} s of CPU time** for the whole script (data, training,
  saving, measuring); wall time {r['train_seconds']:.0f} s of training, {r['seconds']:.0f} s in all (wall time depends on
  how busy the machine is; CPU time much less). torch {torch.__version__}, transformers {transformers.__version__}.

| step | train loss | dev exact match (every 4th dev pair) | seconds |
|---|---|---|---|
{hist}

## Measured

Greedy exact match of the saved files loaded back with `AutoModelForSeq2SeqLM` / `AutoTokenizer`,
on numbers never seen in training:

| direction | test | dev |
|---|---|---|
| words -> digits (`digits: ...`) | {rate('test_digits')} | {rate('dev_digits')} |
| digits -> words (`words: ...`) | {rate('test_words')} | {rate('dev_words')} |

First test misses (if any):

```text
{misses or '(none)'}
```

## Reproduce

```bash
python scripts/train_tiny_t5.py --steps {args.steps} --batch {args.batch} --lr {args.lr} --warmup {args.warmup} --dropout {args.dropout} --seed {args.seed} --threads {args.threads}
```

Seeded; runs repeat exactly on the same machine and versions.
"""
    (out_dir / "README.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
