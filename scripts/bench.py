#!/usr/bin/env python3
"""Benchmarks of the course on this machine (`make bench`): the local LLM engines and the notebooks.

    python scripts/bench.py llm          # -> benchmarks/llm.csv
    python scripts/bench.py notebooks    # -> benchmarks/notebooks.csv (each notebook run alone, offline)
    python scripts/bench.py notebooks --write   # the same, storing each notebook's outputs
    python scripts/bench.py notebooks --write day03   # only Day 3, merged into the csv
    python scripts/bench.py runtimes     # README day table + notebook headers <- benchmarks/notebooks.csv

llm.csv, one row per engine of the SmolLM2 stand-in (fp32 transformers is the reference):
decode tokens/s (64 greedy tokens after a chat prompt), prefill ms per 1,000 prompt tokens,
and agreement with fp32 on the golden dev questions answered from their gold section: the share
of identical greedy answers, and the mean gold-fact support of the answers (the fraction of the
gold answer's numbers and names that the answer states); and the tool adapter merged into the
same engine on Day 10's 22 tool tasks (grammar-constrained: seconds and tool-choice accuracy). notebooks.csv: wall and CPU seconds,
peak RSS of the kernel, and the 1-minute load average when the run started. Timings are never
asserted in tests (machines are noisy): they live here. Run on a quiet machine.
"""

import csv
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks"
ENGINES = ("fp32", "int8", "int4-ort", "int8-ort")
N_QUESTIONS = 12  # dev questions for agreement (a fixed, documented sample: the first 12 answerable)
DECODE_TOKENS = 64
SYSTEM = "Answer the question from the context in one short sentence."


def _prompt(tok, question: dict) -> object:
    from helpers import corpus, generation

    context = corpus.gold_context(question)
    return generation.chat_ids(tok, f"Context:\n{context}\n\nQuestion: {question['question']}", SYSTEM)


def _answer(model, tok, ids, max_new_tokens: int = 48) -> tuple[str, int, float]:
    from helpers import generation

    start = time.perf_counter()
    new = generation.greedy(model, tok, ids, max_new_tokens)
    return tok.decode(new, skip_special_tokens=True).strip(), int(new.numel()), time.perf_counter() - start


Unit = Literal["bytes", "KiB", "MiB", "GiB"]


def _calculator(expression: str) -> float:
    """Evaluate an arithmetic expression with + - * / ** and parentheses, and return the number."""


def _search_handbook(query: str, document: str | None = None) -> str:
    """Search the course handbook for passages about a topic; optionally only inside one document."""


def _count_tokens(text: str) -> int:
    """Count how many GPT-2 tokens a text has."""


def _convert_units(value: float, from_unit: Unit, to_unit: Unit) -> float:
    """Convert a memory size from one unit to another (1 KiB = 1024 bytes)."""


def _tool_choices(engine: str) -> tuple[float, float]:
    """Seconds and tool-choice accuracy of the tool adapter (merged into this engine's weights) on
    Day 10's 22 tool tasks, one grammar-constrained call each."""
    import json

    from llama_index.core.tools import FunctionTool

    from helpers import agents, config, llm

    specs = [agents.spec_of(FunctionTool.from_defaults(fn=f, name=f.__name__.lstrip("_")))
             for f in (_calculator, _search_handbook, _count_tokens, _convert_units)]
    tasks = [json.loads(line) for line in (config.DATA_DIR / "agents" / "tool_tasks.jsonl").read_text().splitlines()]
    if engine.endswith("-ort"):  # make models builds only the exports the course uses; the benchmark needs all
        from helpers import prepare

        prepare.prepare_ort(config.TOOL_ADAPTER_ID, engine.removesuffix("-ort"))
    model, tok, _ = llm.causal_lm(llm.LLM_ID, engine, adapter=config.TOOL_ADAPTER_ID)
    start = time.perf_counter()
    calls, _ = agents.choose_calls(model, tok, [t["request"] for t in tasks], specs, max_new_tokens=48)
    seconds = time.perf_counter() - start
    return round(seconds, 1), round(sum(c is not None and c[0] == t["tool"] for c, t in zip(calls, tasks)) / len(tasks), 3)


def bench_llm() -> list[dict]:
    import torch

    sys.path.insert(0, str(ROOT))
    from helpers import corpus, facts, generation, llm

    torch.set_num_threads(2)
    questions = [q for q in corpus.load_questions("dev") if q.get("gold_sentence")][:N_QUESTIONS]
    reference: list[str] = []
    rows = []
    for engine in ENGINES:
        model, tok, _ = llm.causal_lm(llm.LLM_ID, variant=engine)
        warm = generation.chat_ids(tok, "Say hello.")
        _answer(model, tok, warm, 4)
        # decode speed: 64 new tokens after a short chat prompt (no early stop: eos disabled)
        ids = generation.chat_ids(tok, "Write a long story about a lighthouse keeper and a storm.")
        start = time.perf_counter()
        if engine.endswith("-ort"):  # an eos id no token has: decode all 64
            new = model.generate(ids, max_new_tokens=DECODE_TOKENS, eos_token_id=-1)[0, ids.shape[1]:]
        else:
            new = generation.greedy(model, tok, ids, DECODE_TOKENS, min_new_tokens=DECODE_TOKENS)
        decode_s = time.perf_counter() - start
        # prefill: the first token after a ~1,000-token prompt
        long_text = " ".join(corpus.doc_text("04_kv_cache.md").split()[:700])
        long_ids = generation.chat_ids(tok, long_text + "\n\nSummarise this in one word.")
        start = time.perf_counter()
        generation.greedy(model, tok, long_ids, 1)
        prefill_ms = (time.perf_counter() - start) * 1000 / long_ids.shape[1] * 1000
        answers = [_answer(model, tok, _prompt(tok, q))[0] for q in questions]
        if engine == "fp32":
            reference = answers
        support = [facts.fact_support(q["answer"], a) for q, a in zip(questions, answers)]
        tools_s, tool_accuracy = _tool_choices(engine)
        rows.append({
            "engine": engine, "decode_tok_per_s": round(int(new.numel()) / decode_s, 1),
            "prefill_ms_per_1k_tokens": round(prefill_ms), "prefill_prompt_tokens": int(long_ids.shape[1]),
            "identical_to_fp32": round(sum(a == r for a, r in zip(answers, reference)) / len(answers), 3),
            "gold_fact_support": round(statistics.mean(support), 3), "n_questions": len(questions),
            "tool_choice_accuracy": tool_accuracy, "tool_tasks_s": tools_s,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}",
        })
        print(rows[-1], flush=True)
    return rows


def bench_notebooks(write: bool = False, only: list[str] | None = None) -> list[dict]:
    """Each notebook run alone; with `write`, its outputs are stored (the committed run). `only`
    (notebook stems or prefixes such as day03) re-runs those and keeps the other rows of the csv."""
    rows = []
    paths = sorted((ROOT / "notebooks").glob("day*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.stem.startswith(o) for o in only)]
        if not paths:
            raise SystemExit(f"no notebook matches {only}")
    for path in paths:
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "nb.py"), "run" if write else "check", str(path)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            print(done.stdout[-3000:], flush=True)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak = re.search(r"kernel peak RSS (\d+) MiB", done.stdout)
        rows.append({"notebook": path.stem, "wall_s": round(wall, 1),
                     "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
                     "peak_rss_mib": int(peak.group(1)) if peak else "", "load_at_start": round(load, 2),
                     "ok": done.returncode == 0})
        print(rows[-1], flush=True)
    return rows


RUNS_IN = re.compile(r"Runs in about [^;\n\"]*? on 2 CPU cores")


def runtime_label(wall_s: float) -> str:
    """The measured wall time as the README and the notebook headers state it."""
    minutes = max(0.5, round(wall_s / 30) / 2)  # nearest half minute
    return f"{minutes:g} minute{'s' if minutes != 1 else ''} ({wall_s:.0f} s measured)"


def sync_runtimes() -> int:
    """Write the runtimes of benchmarks/notebooks.csv into the README's day table and into each
    notebook's "Runs in about ..." header line (one source: the benchmark)."""
    import json

    rows = {r["notebook"]: float(r["wall_s"]) for r in csv.DictReader((OUT / "notebooks.csv").open())}
    readme = (ROOT / "README.md").read_text()
    for stem, wall in rows.items():
        line = next((ln for ln in readme.splitlines() if ln.startswith("| ") and f"[{stem}]" in ln), None)
        if line is None:
            continue
        cells = line.split(" | ")
        cells[4] = runtime_label(wall).replace(" minutes", " min").replace(" minute", " min")
        readme = readme.replace(line, " | ".join(cells))
        path = ROOT / "notebooks" / f"{stem}.ipynb"
        nb = json.loads(path.read_text(encoding="utf-8"))
        head = nb["cells"][0]["source"]
        nb["cells"][0]["source"] = [RUNS_IN.sub(f"Runs in about {runtime_label(wall)} on 2 CPU cores", x) for x in head]
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (ROOT / "README.md").write_text(readme)
    print(f"runtimes of {len(rows)} notebooks written to README.md and the notebook headers")
    return 0


def write(rows: list[dict], name: str) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / name
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {path.relative_to(ROOT)}")
    return path


def main(argv: list[str]) -> int:
    if argv == ["runtimes"]:
        return sync_runtimes()
    store = "--write" in argv
    words = [a for a in argv if a != "--write"]
    only = [a for a in words if a.startswith("day")]
    what = [a for a in words if not a.startswith("day")] or ["llm", "notebooks"]
    if "llm" in what:
        write(bench_llm(), "llm.csv")
    if "notebooks" in what:
        rows = bench_notebooks(store, only)
        if only:  # merge into the rows of the last full run
            fresh = {r["notebook"]: r for r in rows}
            old = list(csv.DictReader((OUT / "notebooks.csv").open()))
            rows = sorted([fresh.pop(r["notebook"], r) for r in old] + list(fresh.values()), key=lambda r: r["notebook"])
            for r in rows:
                r["wall_s"] = float(r["wall_s"])
        write(rows, "notebooks.csv")
        walls = [r["wall_s"] for r in rows]
        print(f"notebooks: max {max(walls):.0f} s, median {statistics.median(walls):.0f} s, total {sum(walls):.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
