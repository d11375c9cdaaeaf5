"""Train the course's offline cross-encoder reranker from all-MiniLM-L6-v2 (deterministic, about 2-3 minutes on 2 cores).

    python scripts/train_reranker.py                          # -> models/_offline/minilm-reranker-handbook/
    python scripts/train_reranker.py --steps 20 --out /tmp/r  # a quick try

No cross-encoder ships offline, so the course makes one: `make models` (helpers/prepare.py) runs this
script when the folder is missing, and `helpers.models.load_cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2")`
loads the result as that id's stand-in. Day 20 trains and measures it: with this recipe it ranks *worse* than
MiniLM's own order (test MRR@5 0.602 -> 0.272), so Day 8 keeps its bi-encoder reranker offline.

* Model: sentence-transformers' `CrossEncoder` built on all-MiniLM-L6-v2's encoder weights (6 layers,
  384 wide), plus a new one-logit classification head (seeded). It reads "[CLS] question [SEP] passage
  [SEP]" and outputs one relevance logit.
* Retrieval units: the handbook's sentences (llama-index `SentenceWindowNodeParser`, as on Day 8).
* Training pairs, never from the test split (tests/test_reranker.py checks it):
  1. every answerable **dev** golden question with the sentence(s) that answer it (`helpers.rag.is_relevant`)
     as positives, and hard negatives: the highest-ranked non-relevant sentences of the MiniLM bi-encoder;
  2. synthetic pairs written without an LLM: each handbook section's title as the query, the first sentence
     of its body as the positive, and the first sentences of other sections of the same file as negatives.
* Loss: binary cross-entropy on the logit (label 1 relevant, 0 not), AdamW, linear warm-up and decay,
  fixed seed and a fixed batch order, so a re-run on the same machine gives the same weights.
* The folder gets a model card (README.md): data, steps, time and an in-sample evaluation on dev.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from helpers import config  # noqa: E402

NAME = "minilm-reranker-handbook"
DEFAULT_OUT = config.OFFLINE_DIR / NAME
BASE_ID = "sentence-transformers/all-MiniLM-L6-v2"
SEED = 0
STEPS = 120
BATCH_SIZE = 16
LR = 1e-4
WARMUP = 12
MAX_LENGTH = 128  # word pieces for question + passage: a handbook sentence and a question fit easily
HARD_NEGATIVES = 4  # per dev question, from the bi-encoder's top MINE_K
MINE_K = 20
SYNTH_NEGATIVES = 2  # per synthetic (title -> first sentence) pair
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*(\"])")


# ----------------------------------------------------------------------------- data
def sentence_nodes() -> list:
    """The handbook as one llama-index node per sentence (Day 8's parser; start/end offsets kept)."""
    from llama_index.core.node_parser import SentenceWindowNodeParser

    from helpers import corpus

    return SentenceWindowNodeParser.from_defaults(window_size=1).get_nodes_from_documents(corpus.load_documents())


def first_sentence(body: str) -> str:
    """The first sentence of a section body (Markdown marks, list bullets and code fences dropped)."""
    lines = [ln.strip() for ln in body.splitlines()]
    text = " ".join(ln.lstrip("-*> ").strip() for ln in lines if ln and not ln.startswith(("#", "```", "|")))
    text = re.sub(r"[*_`]", "", text).strip()
    return SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def synthetic_pairs(seed: int = SEED) -> list[tuple[str, str, float]]:
    """(section title, first sentence, 1.0) for every handbook section with a body, plus
    SYNTH_NEGATIVES (title, first sentence of another section of the same file, 0.0)."""
    from helpers import corpus

    rng = random.Random(seed)
    out = []
    for path in corpus.handbook_files():
        firsts = [(title, first_sentence(bodies[0])) for title, bodies in
                  corpus.section_texts(corpus.doc_text(path.name)).items()]
        firsts = [(t, s) for t, s in firsts if len(s.split()) >= 5]
        for title, sentence in firsts:
            out.append((title, sentence, 1.0))
            others = [s for t, s in firsts if t != title and s != sentence]
            for neg in rng.sample(others, min(SYNTH_NEGATIVES, len(others))):
                out.append((title, neg, 0.0))
    return out


def dev_pairs(nodes: list, model=None, doc_vectors=None) -> list[tuple[str, str, float]]:
    """(dev question, relevant sentence, 1.0) and (dev question, hard negative, 0.0) pairs; hard
    negatives are the bi-encoder's top-ranked sentences that do not answer the question
    (`doc_vectors`: the nodes' unit vectors from `model`, if already computed)."""
    import numpy as np

    from helpers import corpus, rag

    if model is None:
        from helpers.models import load_sentence_model

        model = load_sentence_model(BASE_ID).model
    questions = [q for q in corpus.load_questions("dev") if corpus.gold_refs(q)]
    texts = [n.get_content() for n in nodes]
    docs = doc_vectors if doc_vectors is not None else model.encode(
        texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    queries = model.encode([q["question"] for q in questions], batch_size=64, normalize_embeddings=True,
                           convert_to_numpy=True)
    out = []
    for q, vec in zip(questions, queries):
        top = np.argsort(-(docs @ vec), kind="stable")
        positives = [i for i, n in enumerate(nodes) if rag.is_relevant(n, q)]
        out.extend((q["question"], texts[i], 1.0) for i in positives)
        negatives = [int(i) for i in top[:MINE_K] if i not in positives][:HARD_NEGATIVES]
        out.extend((q["question"], texts[i], 0.0) for i in negatives)
    return out


def training_pairs(nodes: list | None = None, model=None) -> list[tuple[str, str, float]]:
    """All (query, passage, label) training pairs: dev questions with mined hard negatives, then the
    synthetic title -> first-sentence pairs. No test question is used."""
    nodes = sentence_nodes() if nodes is None else nodes
    return dev_pairs(nodes, model) + synthetic_pairs()


# ----------------------------------------------------------------------------- model and training
def base_cross_encoder(max_length: int = MAX_LENGTH, seed: int = SEED):
    """A `CrossEncoder` on all-MiniLM-L6-v2's encoder with a fresh, seeded one-logit head."""
    import torch
    from sentence_transformers import CrossEncoder

    from helpers.models import device, resolve

    torch.manual_seed(seed)
    log = logging.getLogger("sentence_transformers.base.model")  # silence "Converting SentenceTransformer model <path>"
    level, _ = log.level, log.setLevel(logging.ERROR)
    try:
        return CrossEncoder(resolve(BASE_ID).location, num_labels=1, max_length=max_length, device=device())
    finally:
        log.setLevel(level)


def train(pairs: list[tuple[str, str, float]], steps: int = STEPS, batch_size: int = BATCH_SIZE, lr: float = LR,
          seed: int = SEED, model=None, progress: bool = True):
    """Fine-tune a cross-encoder on `pairs` with binary cross-entropy; returns (model, losses per step).
    The batch order is a seeded shuffle of the pairs, epoch after epoch."""
    import torch
    from tqdm.auto import tqdm

    model = base_cross_encoder(seed=seed) if model is None else model
    net, tok = model.model, model.tokenizer
    # The word-piece embeddings (11.7M of MiniLM's 22.7M parameters) stay frozen: the few hundred pairs
    # cannot teach them much, and skipping their gradient and optimizer update halves the step time.
    net.get_input_embeddings().weight.requires_grad_(False)
    rng = random.Random(seed)
    order: list[int] = []
    while len(order) < steps * batch_size:
        epoch = list(range(len(pairs)))
        rng.shuffle(epoch)
        order += epoch
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    warmup = min(WARMUP, max(1, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    net.train()
    losses = []
    for step in tqdm(range(steps), desc="reranker", disable=not progress):
        batch = [pairs[i] for i in order[step * batch_size:(step + 1) * batch_size]]
        enc = tok([b[0] for b in batch], [b[1] for b in batch], padding=True, truncation=True,
                  max_length=model.max_length, return_tensors="pt").to(net.device)
        labels = torch.tensor([b[2] for b in batch], dtype=torch.float32, device=net.device)
        loss = loss_fn(net(**enc).logits.squeeze(-1), labels)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    net.eval()
    return model, losses


def dev_mrr(model, nodes: list, k: int = 20, top: int = 5, bi_encoder=None) -> dict[str, float]:
    """MRR@top on the dev questions: bi-encoder order of the top k sentences vs the cross-encoder's
    re-ordering of them (in-sample: the reranker was trained on these questions)."""
    import numpy as np

    from helpers import corpus, rag
    from helpers.models import load_sentence_model

    bi = bi_encoder or load_sentence_model(BASE_ID).model
    questions = [q for q in corpus.load_questions("dev") if corpus.gold_refs(q)]
    texts = [n.get_content() for n in nodes]
    docs = bi.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    rr_bi, rr_ce = [], []
    for q in questions:
        cand = [int(i) for i in np.argsort(-(docs @ bi.encode(q["question"], normalize_embeddings=True)))[:k]]
        scores = model.predict([(q["question"], texts[i]) for i in cand], batch_size=32, show_progress_bar=False)
        reranked = [cand[i] for i in np.argsort(-scores, kind="stable")]

        def rr(order, q=q):
            return next((1 / (r + 1) for r, i in enumerate(order[:top]) if rag.is_relevant(nodes[i], q)), 0.0)

        rr_bi.append(rr(cand))
        rr_ce.append(rr(reranked))
    return {"n": len(questions), "mrr_bi_encoder": float(np.mean(rr_bi)), "mrr_reranked": float(np.mean(rr_ce))}


MODEL_CARD = """# {name}

A cross-encoder reranker trained by the LLM Challenge course (`scripts/train_reranker.py`): it stands in
offline for `cross-encoder/ms-marco-MiniLM-L-6-v2` (same MiniLM-L6 cross-encoder architecture; trained on
the course handbook, not on MS MARCO). Load it with
`helpers.models.load_cross_encoder("cross-encoder/ms-marco-MiniLM-L-6-v2")` or
`sentence_transformers.CrossEncoder(folder)`.

- Start: the encoder weights of all-MiniLM-L6-v2 (Apache-2.0) and a new, seeded one-logit head.
- Data: {n_pairs} (query, sentence, label) pairs: {n_dev} from the {n_dev_q} answerable **dev** golden
  questions (gold sentences as positives, the MiniLM bi-encoder's top-ranked wrong sentences as hard
  negatives) and {n_synth} synthetic pairs (section title -> first sentence of the section; other
  sections' first sentences as negatives). No test question is used. Data: the course handbook (CC0).
- Training: {steps} steps, batch {batch}, AdamW lr {lr}, binary cross-entropy, max length {max_length},
  seed {seed}; loss {loss_first:.3f} (first 10 steps) -> {loss_last:.3f} (last 10); {seconds:.0f} s on
  {threads} CPU threads.
- Dev evaluation (in-sample: these questions trained it), rerank the bi-encoder's top 20 sentences, keep
  5: MRR@5 {mrr_bi:.3f} (bi-encoder order) -> {mrr_ce:.3f} (reranked), n={n_eval}. Day 20 reports the
  test split.
"""


def build(out: Path = DEFAULT_OUT, steps: int = STEPS, batch_size: int = BATCH_SIZE, evaluate: bool = True) -> Path:
    """Train and save the reranker with its model card into `out` (replaced atomically)."""
    import numpy as np
    import torch

    from helpers.models import load_sentence_model

    start = time.perf_counter()
    torch.manual_seed(SEED)
    bi = load_sentence_model(BASE_ID).model
    nodes = sentence_nodes()
    dev = dev_pairs(nodes, bi)
    synth = synthetic_pairs()
    model, losses = train(dev + synth, steps=steps, batch_size=batch_size)
    seconds = time.perf_counter() - start
    scores = dev_mrr(model, nodes, bi_encoder=bi) if evaluate else {"n": 0, "mrr_bi_encoder": float("nan"),
                                                                    "mrr_reranked": float("nan")}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent))
    model.save_pretrained(str(tmp))
    from helpers import corpus

    info = dict(name=NAME, n_pairs=len(dev) + len(synth), n_dev=len(dev), n_synth=len(synth),
                n_dev_q=sum(1 for q in corpus.load_questions("dev") if corpus.gold_refs(q)), steps=steps,
                batch=batch_size, lr=LR, max_length=MAX_LENGTH, seed=SEED, loss_first=float(np.mean(losses[:10])),
                loss_last=float(np.mean(losses[-10:])), seconds=seconds, threads=torch.get_num_threads(),
                mrr_bi=scores["mrr_bi_encoder"], mrr_ce=scores["mrr_reranked"], n_eval=scores["n"])
    (tmp / "README.md").write_text(MODEL_CARD.format(**info), encoding="utf-8")
    (tmp / "training.json").write_text(json.dumps({**info, "losses": losses}, indent=1) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    print(f"[reranker] trained {steps} steps in {seconds:.0f} s; dev MRR@5 {scores['mrr_bi_encoder']:.3f} -> "
          f"{scores['mrr_reranked']:.3f} (in-sample); saved to {out}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    build(args.out, args.steps, args.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
