"""Train the course's tiny CLIP stand-in on scikit-learn's 8x8 digits (deterministic, ~1 minute on one core).

    python scripts/train_tiny_clip.py                       # -> models/llm-challenge/tiny-clip-digits/
    python scripts/train_tiny_clip.py --steps 300 --out /tmp/tiny-clip   # a quicker try

What it makes is loaded with exactly the code used for `openai/clip-vit-base-patch32`:

    model = CLIPModel.from_pretrained(folder)
    processor = CLIPProcessor.from_pretrained(folder)
    inputs = processor(text=captions, images=images, return_tensors="pt", padding=True)
    model(**inputs).logits_per_image

* Images: 8x8 single-channel. The processor (a `CLIPImageProcessor`, `do_convert_rgb=False`) expects
  pixels in 0..255 like any image: PIL "L" images, or uint8 numpy arrays of shape (8, 8, 1) (one image)
  or (N, 8, 8, 1) (a batch). scikit-learn's digits run 0..16, so convert them with `digits_to_uint8`
  below: round(x * 255 / 16). Larger grey images are resized (shortest edge 8) and centre-cropped.
* Text: a `CLIPTokenizer` with CLIP's byte-level BPE format (vocab.json + merges.txt, `</w>` word ends,
  `<|startoftext|>` / `<|endoftext|>`) whose merges assemble each caption word into one token; any other
  text still tokenizes, letter by letter.
* Training: CLIP's symmetric contrastive loss. Each step draws G groups of ten training images, one per
  digit, and each group is scored against the ten captions, so a batch never holds the same caption
  twice (no false negatives), exactly as in CLIP's in-batch loss.
* Split: `train_test_split(arange(1797), test_size=397, random_state=0, stratify=y)`; the 397 held-out
  indices are also written to `heldout_test_indices.json` in the output folder.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "models" / "llm-challenge" / "tiny-clip-digits"

SEED = 0
TEST_SIZE = 397
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTIONS = [f"a photo of the digit {w}" for w in NUMBER_WORDS]
BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_TEXT_POSITIONS = 77  # as in openai/clip-vit-base-patch32

MODEL_KW = dict(
    vision=dict(image_size=8, patch_size=2, num_channels=1, hidden_size=64, intermediate_size=128,
                num_hidden_layers=2, num_attention_heads=4, hidden_act="quick_gelu"),
    text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
              max_position_embeddings=MAX_TEXT_POSITIONS, hidden_act="quick_gelu"),
    projection_dim=32,
)


# ----------------------------------------------------------------------------- data
def digits_to_uint8(x: np.ndarray) -> np.ndarray:
    """scikit-learn digit pixels (0..16, any shape) -> uint8 0..255, the range the processor expects."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * 255.0 / 16.0), 0, 255).astype(np.uint8)


def load_split():
    """(images uint8 (N, 8, 8), labels, train indices, held-out test indices), the course's fixed split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    y = digits.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=TEST_SIZE, random_state=0, stratify=y
    )
    return digits_to_uint8(digits.images), y, np.sort(train_idx), np.sort(test_idx)


# ----------------------------------------------------------------------------- tokenizer
def bytes_to_unicode() -> dict[int, str]:
    """CLIP's / GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build_bpe(words: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """CLIP-format vocab and merges: the 256 byte symbols, the same with `</w>`, then one merge per
    step that assembles each word left to right (ending in `word</w>`), then the two specials."""
    base = list(bytes_to_unicode().values())
    vocab = base + [b + "</w>" for b in base]
    merges: list[tuple[str, str]] = []
    for word in words:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        left = symbols[0]
        for right in symbols[1:]:
            pair = (left, right)
            if pair not in merges:
                merges.append(pair)
            left = left + right
    for a, b in merges:
        if a + b not in vocab:
            vocab.append(a + b)
    vocab += [BOS, EOS]
    return {tok: i for i, tok in enumerate(vocab)}, merges


def write_tokenizer(folder: Path):
    """Write vocab.json + merges.txt and load them as a CLIPTokenizer (tokenizers backend)."""
    from transformers import CLIPTokenizer

    words = sorted({w for c in CAPTIONS for w in c.split()}, key=lambda w: (len(w), w))
    vocab, merges = build_bpe(words)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8"
    )
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MAX_TEXT_POSITIONS)
    for word in words:  # every caption word must be a single token
        pieces = tok.tokenize(word)
        assert pieces == [word + "</w>"], (word, pieces)
    return tok


# ----------------------------------------------------------------------------- model
def make_processor(tokenizer, mean: float, std: float):
    from transformers import CLIPImageProcessor, CLIPProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 8}, crop_size={"height": 8, "width": 8}, do_resize=True,
        do_center_crop=True, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=[mean], image_std=[std], do_convert_rgb=False,
    )
    return CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


def make_model(vocab_size: int, bos_id: int, eos_id: int):
    from transformers import CLIPConfig, CLIPModel

    cfg = CLIPConfig(
        text_config=dict(MODEL_KW["text"], projection_dim=MODEL_KW["projection_dim"], vocab_size=vocab_size, bos_token_id=bos_id,
                         eos_token_id=eos_id, pad_token_id=eos_id),
        vision_config=dict(MODEL_KW["vision"], projection_dim=MODEL_KW["projection_dim"]),
        projection_dim=MODEL_KW["projection_dim"],
        logit_scale_init_value=2.6592,
    )
    cfg.architectures = ["CLIPModel"]
    return CLIPModel(cfg)


def as_processor_images(images_u8: np.ndarray) -> np.ndarray:
    """(N, 8, 8) uint8 -> (N, 8, 8, 1), the numpy layout the processor accepts as a batch."""
    return images_u8[..., None]


@torch.no_grad()
def zero_shot_accuracy(model, processor, images_u8: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of argmax over the ten captions, through the processor, as a notebook would do it."""
    model.eval()
    inputs = processor(text=CAPTIONS, images=as_processor_images(images_u8), return_tensors="pt", padding=True)
    pred = model(**inputs).logits_per_image.argmax(dim=1).numpy()
    return float((pred == labels).mean())


def random_shift(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift each (1, 8, 8) image by -1, 0 or +1 pixel in x and y (zero padded); a mild augmentation."""
    n = batch.shape[0]
    padded = torch.nn.functional.pad(batch, (1, 1, 1, 1), value=float(batch.min()))
    dx = torch.randint(0, 3, (n,), generator=gen)
    dy = torch.randint(0, 3, (n,), generator=gen)
    out = torch.empty_like(batch)
    for i in range(n):
        out[i] = padded[i, :, dy[i]:dy[i] + 8, dx[i]:dx[i] + 8]
    return out


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1600, help="optimizer steps (fixed, so runs are reproducible)")
    ap.add_argument("--groups", type=int, default=16, help="groups of ten images (one per digit) per step")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = bit-reproducible)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    rng = np.random.default_rng(SEED)
    gen = torch.Generator().manual_seed(SEED)

    images, y, train_idx, test_idx = load_split()
    train_f = images[train_idx].astype(np.float64) / 255.0
    mean, std = round(float(train_f.mean()), 4), round(float(train_f.std()), 4)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = write_tokenizer(Path(tmp))
    processor = make_processor(tokenizer, mean, std)
    model = make_model(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"tiny CLIP: {n_params:,} parameters; vocab {len(tokenizer)}; image mean/std {mean}/{std}")

    # Everything goes through the processor once, so training sees exactly what inference sees.
    text = processor(text=CAPTIONS, return_tensors="pt", padding=True)
    pix = processor(images=as_processor_images(images[train_idx]), return_tensors="pt")["pixel_values"]
    by_class = [np.flatnonzero(y[train_idx] == c) for c in range(10)]

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05, betas=(0.9, 0.98))
    warmup = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))
    )
    targets = torch.arange(10).repeat(args.groups)
    model.train()
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        rows = np.stack([[rng.choice(by_class[c]) for c in range(10)] for _ in range(args.groups)]).ravel()
        batch = random_shift(pix[rows], gen)
        out = model(input_ids=text["input_ids"], attention_mask=text["attention_mask"], pixel_values=batch)
        logits = out.logits_per_image  # (10 * groups, 10): image i of each group is digit i
        loss_img = torch.nn.functional.cross_entropy(logits, targets)
        per_group_t2i = logits.view(args.groups, 10, 10).transpose(1, 2).reshape(-1, 10)
        loss_txt = torch.nn.functional.cross_entropy(per_group_t2i, targets)
        loss = (loss_img + loss_txt) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():  # CLIP clamps the temperature at 100
            model.logit_scale.clamp_(0, math.log(100))
        if step % 100 == 0 or step == args.steps:
            print(f"step {step:5d}  loss {loss.item():.4f}  logit_scale {model.logit_scale.exp().item():6.2f}"
                  f"  {time.perf_counter() - t0:6.1f}s", flush=True)
    seconds = time.perf_counter() - t0

    # Save, then evaluate from the saved folder with the loading code the notebooks use.
    out_dir: Path = args.out
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    model.eval()
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    write_tokenizer(out_dir)  # keep the human-readable vocab.json + merges.txt beside tokenizer.json
    _force_image_processor_type(out_dir)
    (out_dir / "heldout_test_indices.json").write_text(json.dumps([int(i) for i in test_idx]))

    from transformers import CLIPModel, CLIPProcessor, CLIPTokenizer

    loaded = CLIPModel.from_pretrained(out_dir).eval()
    loaded_proc = CLIPProcessor.from_pretrained(out_dir)
    assert type(loaded_proc).__name__ == "CLIPProcessor", type(loaded_proc)
    tok = CLIPTokenizer.from_pretrained(out_dir)
    for c in CAPTIONS:
        ids = tok(c)["input_ids"]
        assert len(ids) == 2 + len(c.split()) and tok.decode(ids, skip_special_tokens=True) == c, (c, ids)
    acc = zero_shot_accuracy(loaded, loaded_proc, images[test_idx], y[test_idx])
    train_acc = zero_shot_accuracy(loaded, loaded_proc, images[train_idx], y[train_idx])
    write_readme(out_dir, n_params=n_params, vocab_size=len(tok), mean=mean, std=std, steps=args.steps,
                 groups=args.groups, lr=args.lr, threads=args.threads, seconds=seconds, acc=acc,
                 train_acc=train_acc, final_loss=loss.item())
    size_kb = sum(f.stat().st_size for f in out_dir.iterdir()) / 1024
    print(f"saved {out_dir} ({size_kb:.0f} KB) in {seconds:.1f}s of training")
    print(f"zero-shot accuracy on the {len(test_idx)} held-out digits: {acc:.4f} (train {train_acc:.4f})")
    return acc


def _force_image_processor_type(folder: Path) -> None:
    """Record `CLIPImageProcessor`, as openai/clip-vit-base-patch32 does: without torchvision transformers
    saves its PIL fallback's name; with this name each machine picks its own backend on load."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        path = folder / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        target = data.get("image_processor", data) if name == "processor_config.json" else data
        if "image_processor_type" in target:
            target["image_processor_type"] = "CLIPImageProcessor"
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_readme(out_dir: Path, **m) -> None:
    import sklearn
    import transformers

    caps = "\n".join(f"  {i}: \"{c}\"" for i, c in enumerate(CAPTIONS))
    text = f"""# tiny-clip-digits

A tiny `transformers.CLIPModel` trained by this course, the offline stand-in for
`openai/clip-vit-base-patch32`. Same model class, same processor class, same loading code, same
contrastive objective; but 8x8 grey digit images and ten captions instead of 400M web image/text pairs.

```python
from transformers import CLIPModel, CLIPProcessor
model = CLIPModel.from_pretrained("models/llm-challenge/tiny-clip-digits")
processor = CLIPProcessor.from_pretrained("models/llm-challenge/tiny-clip-digits")
inputs = processor(text=captions, images=images, return_tensors="pt", padding=True)
probs = model(**inputs).logits_per_image.softmax(dim=1)
```

## Inputs

* **Images**: single channel, pixels 0..255 (`do_convert_rgb` is off). Give PIL `"L"` images, or uint8
  numpy arrays shaped `(8, 8, 1)` (one image; a list of them works) or `(N, 8, 8, 1)` (a batch). A plain
  2-D `(8, 8)` array is not accepted by transformers' image processors (add the channel axis with
  `a[..., None]`). scikit-learn's digits run 0..16: convert them with
  `np.round(x * 255 / 16).astype(np.uint8)` (`Image.fromarray(that, mode="L")` for PIL). Larger grey
  images are resized (shortest edge 8, bicubic) and centre-cropped to 8x8; dark background, light ink,
  as in the digits data (invert a black-on-white drawing first).
* Normalisation: rescale by 1/255, then mean {m['mean']} and std {m['std']} (of the training pixels).
* **Text**: a `CLIPTokenizer` in CLIP's byte-level BPE format (`vocab.json` + `merges.txt`, `</w>` word
  ends, `<|startoftext|>` / `<|endoftext|>`, padding with `<|endoftext|>` as in the original). Its merges
  make each caption word one token; any other text still tokenizes, letter by letter, but the model has
  only ever seen these ten captions:

{caps}

## Model

| | vision | text |
|---|---|---|
| layers | 2 | 2 |
| width / MLP / heads | 64 / 128 / 4 | 64 / 128 / 4 |
| input | 8x8x1, patch 2 (16 patches + CLS) | vocab {m['vocab_size']}, 77 positions |

Projection dimension 32, `quick_gelu`, learnable temperature (initial 1/0.07, clamped at 100).
{m['n_params']:,} parameters, float32 safetensors.

## Training

* Data: scikit-learn's `load_digits()` (1,797 8x8 images of handwritten digits; the UCI "Optical
  Recognition of Handwritten Digits" test set, shipped with scikit-learn under its BSD-3-Clause licence).
* Split: `train_test_split(np.arange(1797), test_size=397, random_state=0, stratify=digits.target)`
  (scikit-learn's model_selection) -> 1,400 training and 397 held-out images. The held-out indices are
  in `heldout_test_indices.json` (sorted).
* Objective: CLIP's symmetric image<->text cross-entropy. Each step draws {m['groups']} groups of ten
  training images (one per digit, random +-1 pixel shifts) and scores each group against the ten
  captions, so no batch has two copies of a caption.
* AdamW (lr {m['lr']}, betas 0.9/0.98, weight decay 0.05), {m['steps']} steps, linear warmup then cosine
  decay, seed {SEED}, {m['threads']} CPU thread(s): {m['seconds']:.0f} s of training on the machine that
  built this folder (about a minute on an idle core). Final training loss {m['final_loss']:.4f}.

## Measured

Zero-shot accuracy (argmax of `logits_per_image` over the ten captions, through the processor):

* held-out 397 digits: **{m['acc']:.4f}**
* the 1,400 training digits: {m['train_acc']:.4f}

## Reproduce

```bash
python scripts/train_tiny_clip.py            # writes this folder, prints the accuracy
```

Deterministic for a given machine and library versions (seeded, fixed steps, one thread); built with
torch {torch.__version__}, transformers {transformers.__version__}, scikit-learn {sklearn.__version__}.
"""
    (out_dir / "README.md").write_text(text)


if __name__ == "__main__":
    acc = main()
    sys.exit(0 if acc >= 0.9 else 1)
