"""The course's data: the handbook (CC0 Markdown), its sections, and the golden question sets.

Standard library only at import (`load_documents` imports llama-index when called), so the data
validator `data/golden/validate.py` runs without the course environment.

    docs = corpus.load_documents()              # llama-index Documents, one per handbook file
    dev = corpus.load_questions("dev")          # golden questions for choices; "test" for reports
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from .config import GOLDEN_DIR, HANDBOOK_DIR

QUESTION_TYPES = ("fact", "keyword", "paraphrase", "summary", "multi_hop", "unanswerable")
SPLITS = ("dev", "test")
NOT_DOCUMENTS = ("LICENSE.md",)


def handbook_files(distractors: bool = True) -> list[Path]:
    """The handbook's Markdown files in name order (the off-topic 9x_ files unless `distractors=False`)."""
    return [p for p in sorted(HANDBOOK_DIR.glob("*.md"))
            if p.name not in NOT_DOCUMENTS and (distractors or not p.name.startswith("9"))]


def title_of(text: str, fallback: str) -> str:
    """The `# ` title line of a Markdown text, or `fallback`."""
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first[2:].strip() if first.startswith("# ") else fallback


@lru_cache(maxsize=None)
def doc_text(doc: str) -> str:
    """The text of one handbook file, e.g. ``doc_text("09_rag_basics.md")``."""
    path = HANDBOOK_DIR / doc
    if not path.is_file():
        raise FileNotFoundError(f"data/handbook/{doc} does not exist; files: {[p.name for p in handbook_files()]}")
    return path.read_text(encoding="utf-8")


def load_documents(names: Iterable[str] | None = None, distractors: bool = True) -> list[Any]:
    """The handbook as llama-index `Document`s, one per Markdown file, in file-name order.

    `names` picks files (e.g. ``["09_rag_basics.md"]``); `distractors=False` drops the off-topic
    90_/91_ files. Metadata: ``doc`` (file name) and ``title`` (the ``# `` line). The embedder
    and the LLM see only the title (``doc`` is excluded). The document id is the file name, which
    makes re-ingestion idempotent.
    """
    from llama_index.core import Document

    wanted = set(names) if names is not None else None
    docs = []
    for path in handbook_files(distractors):
        if wanted is not None and path.name not in wanted:
            continue
        text = doc_text(path.name)
        docs.append(Document(
            id_=path.name,
            text=text,
            metadata={"doc": path.name, "title": title_of(text, path.stem)},
            excluded_embed_metadata_keys=["doc"],
            excluded_llm_metadata_keys=["doc"],
        ))
    if wanted is not None and len(docs) != len(wanted):
        missing = sorted(wanted - {d.metadata["doc"] for d in docs})
        raise FileNotFoundError(f"handbook files not found: {missing}")
    return docs


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (blank lines skipped), with a clear error if it is missing."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _check_split(split: str | None) -> None:
    if split not in (None, *SPLITS):
        raise ValueError(f"split must be 'dev', 'test' or None, not {split!r}")


def load_questions(split: str | None = None, types: str | Iterable[str] | None = None) -> list[dict]:
    """Golden questions (dicts with id, question, answer, type, doc, section, gold_sentence,
    second, split), optionally only one split ("dev" or "test") and some types."""
    _check_split(split)
    wanted = {types} if isinstance(types, str) else (set(types) if types is not None else None)
    if wanted is not None and not wanted <= set(QUESTION_TYPES):
        raise ValueError(f"unknown question types {sorted(wanted - set(QUESTION_TYPES))}; known: {QUESTION_TYPES}")
    return [q for q in read_jsonl(GOLDEN_DIR / "questions.jsonl")
            if (split is None or q["split"] == split) and (wanted is None or q["type"] in wanted)]


def load_router_questions(split: str | None = None) -> list[dict]:
    """Router questions about 20_course_guide.md (id, question, route "summary"/"detail",
    section number or None, split)."""
    _check_split(split)
    return [q for q in read_jsonl(GOLDEN_DIR / "router_questions.jsonl") if split is None or q["split"] == split]


@lru_cache(maxsize=8192)
def normalise(text: str) -> str:
    """Lower case, whitespace collapsed, Markdown emphasis/code marks removed: for containment tests."""
    return " ".join(re.sub(r"[*_`]", "", text).lower().split())


HEADING_RE = re.compile(r"^(#{1,6}) (.+?)\s*$")


def parse_headings(text: str) -> list[tuple[int, str, int]]:
    """``(level, heading text, line index)`` of every Markdown heading line of `text`."""
    return [(len(m.group(1)), m.group(2), i) for i, line in enumerate(text.splitlines())
            for m in [HEADING_RE.match(line)] if m]


def section_texts(text: str) -> dict[str, list[str]]:
    """Heading -> the body text(s) under it, to the next heading of the same or a higher level
    (so a ``##`` section includes its ``###`` subsections); repeated headings keep every body."""
    lines = text.splitlines()
    heads = parse_headings(text)
    out: dict[str, list[str]] = {}
    for k, (level, title, start) in enumerate(heads):
        end = next((i for lv, _, i in heads[k + 1:] if lv <= level), len(lines))
        out.setdefault(title, []).append("\n".join(lines[start + 1:end]))
    return out


@lru_cache(maxsize=None)
def section_text(doc: str, section: str) -> str:
    """Text under the heading `section` of handbook file `doc` (its first occurrence)."""
    bodies = section_texts(doc_text(doc)).get(section)
    if not bodies:
        raise KeyError(f"no section {section!r} in {doc}")
    return bodies[0]


def gold_context(question: dict) -> str:
    """The gold section(s) of an answerable question, as one context string."""
    parts = [section_text(question["doc"], question["section"])]
    if question.get("second"):
        parts.append(section_text(question["second"]["doc"], question["second"]["section"]))
    return "\n".join(parts)


def gold_refs(question: dict) -> list[tuple[str, str]]:
    """(doc, gold_sentence) pairs a question needs: one, two for multi_hop, none if unanswerable."""
    refs = []
    if question.get("gold_sentence"):
        refs.append((question["doc"], question["gold_sentence"]))
    second = question.get("second") or None
    if second:
        refs.append((second["doc"], second["gold_sentence"]))
    return refs
