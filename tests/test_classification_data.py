"""Day 18's labelled questions: balanced fixed split, no text in two places."""
import json
from collections import Counter

from helpers import config

ROWS = [json.loads(line) for line in open(config.DATA_DIR / "classification" / "questions.jsonl", encoding="utf-8")]


def _norm(text: str) -> str:
    return text.lower().strip(" ?.!")


def test_split_sizes_and_balance():
    counts = Counter((r["label"], r["split"]) for r in ROWS)
    labels = {r["label"] for r in ROWS}
    assert len(labels) == 6, f"expected six topics, got {sorted(labels)}"
    for label in labels:
        got = (counts[label, "train"], counts[label, "dev"], counts[label, "test"])
        assert got == (30, 10, 10), f"{label}: train/dev/test = {got}, expected 30/10/10"


def test_no_duplicate_texts_within_or_across_splits():
    seen = Counter(_norm(r["text"]) for r in ROWS)
    dupes = [t for t, n in seen.items() if n > 1]
    assert not dupes, f"texts occurring twice (a leak if across splits): {dupes[:5]}"


def test_ids_unique_and_fields_present():
    assert len({r["id"] for r in ROWS}) == len(ROWS), "duplicate ids"
    for r in ROWS:
        assert set(r) == {"id", "text", "label", "split"} and r["text"].strip(), f"bad row {r}"
