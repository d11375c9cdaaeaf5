"""Build Day 24's preference pairs from the golden questions (run: python data/preferences/build.py).

Deterministic; standard library plus the course's `helpers.corpus` and `helpers.facts`.
The rule (README.md): for every answerable golden question, prompt = its gold sentence(s) as a short
context + the question; chosen = the golden answer (it states the fact the context holds); rejected =
a fluent ungrounded answer: (a) `swap_facts` of the answer (one number or name changed; skipped when the
new fact also occurs in the context), and (b) the
golden answer of another question from a different handbook file. Dev questions give the train pairs,
except those whose gold sentence a test question also uses; test questions give the held-out pairs.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from helpers import corpus, facts  # noqa: E402

OUT = Path(__file__).with_name("pairs.jsonl")


def context_of(q: dict) -> str:
    return " ".join(sentence for _, sentence in corpus.gold_refs(q))


def pairs_for(questions: list[dict], split: str) -> list[dict]:
    rows = []
    for i, q in enumerate(questions):
        ctx, start = context_of(q), len(rows)
        swapped = facts.swap_facts(q["answer"], ctx)
        if swapped and facts.unsupported_facts(swapped, ctx):  # skip a swap that lands on another fact of the context
            rows.append({"kind": "swapped_fact", "rejected": swapped})
        # the next question (cyclically) from another handbook file: fluent, on topic, ungrounded here
        other = next(o for o in questions[i + 1:] + questions[:i] if o["doc"] != q["doc"])
        rows.append({"kind": "other_section", "rejected": other["answer"]})
        for r in rows[start:]:
            r.update({"id": f"{q['id']}-{r['kind']}", "question_id": q["id"], "split": split,
                      "context": ctx, "question": q["question"], "chosen": q["answer"]})
    return [{k: r[k] for k in ("id", "question_id", "split", "kind", "context", "question", "chosen", "rejected")}
            for r in rows]


def build() -> list[dict]:
    test = [q for q in corpus.load_questions("test") if corpus.gold_refs(q)]
    test_gold = {s for q in test for _, s in corpus.gold_refs(q)}
    dev = [q for q in corpus.load_questions("dev")
           if corpus.gold_refs(q) and not {s for _, s in corpus.gold_refs(q)} & test_gold]
    return pairs_for(dev, "train") + pairs_for(test, "heldout")


if __name__ == "__main__":
    rows = build()
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} pairs to {OUT.relative_to(ROOT)}:",
          {s: sum(r['split'] == s for r in rows) for s in ("train", "heldout")})
