"""Validate the course handbook corpus and the golden question sets.

Usage:
    python data/golden/validate.py

``validate()`` returns a list of human-readable problems (empty when the
data is clean).  The script exits with status 1 when any problem is found.

Conventions checked here (and relied on by the RAG notebooks):

* ``data/handbook/*.md`` are Markdown documents with one ``# Title`` line and
  ``## Section`` headings (optionally ``### Subsection``).  Paragraphs are
  single lines, so a sentence never spans a line break.
* ``questions.jsonl``: ``section`` is the exact heading text (without the
  ``#`` marks) of the ``##`` or ``###`` heading the answer is under.  The
  ``gold_sentence`` must occur verbatim, as a whole sentence, in the text of
  that section.  The text of a heading runs until the next heading of the same
  or a higher level, so a ``##`` section includes its ``###`` subsections.
* ``router_questions.jsonl``: questions about ``20_course_guide.md`` only,
  whose ``section`` refers to a ``## Section N: ...`` heading.

Standard library only (with the course's `helpers.corpus`, itself standard library only), so it
can run anywhere the repository is checked out.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from helpers.config import GOLDEN_DIR, HANDBOOK_DIR  # noqa: E402
from helpers.corpus import SPLITS, parse_headings, section_texts  # noqa: E402

QUESTIONS_PATH = GOLDEN_DIR / "questions.jsonl"
ROUTER_PATH = GOLDEN_DIR / "router_questions.jsonl"

TOPIC_DOCS = [
    "01_transformers.md",
    "02_tokenization.md",
    "03_decoding.md",
    "04_kv_cache.md",
    "05_attention_variants.md",
    "06_modern_decoders.md",
    "07_mixture_of_experts.md",
    "08_embeddings.md",
    "09_rag_basics.md",
    "10_advanced_retrieval.md",
    "11_evaluation.md",
    "12_agents_and_tools.md",
]
GUIDE_DOC = "20_course_guide.md"
DISTRACTOR_DOCS = ["90_distractor_sourdough.md", "91_distractor_tide_pools.md"]
LICENSE_DOC = "LICENSE.md"

# (min words, max words, min ## sections, max ## sections)
DOC_SHAPES: dict[str, tuple[int, int, int, int]] = {
    **{name: (900, 1600, 4, 7) for name in TOPIC_DOCS},
    GUIDE_DOC: (3000, 4500, 8, 8),
    **{name: (500, 800, 4, 7) for name in DISTRACTOR_DOCS},
}

QUESTION_TYPES: dict[str, tuple[int, int]] = {
    "fact": (45, 55),
    "keyword": (20, 30),
    "paraphrase": (20, 30),
    "summary": (12, 18),
    "multi_hop": (17, 23),
    "unanswerable": (12, 18),
}
TOTAL_QUESTIONS = (140, 160)
DEV_SHARE = (0.55, 0.65)
UNANSWERABLE_ANSWER = "not in the handbook"

QUESTION_KEYS = {"id", "question", "answer", "type", "doc", "section",
                 "gold_sentence", "second", "split"}
SECOND_KEYS = {"doc", "section", "gold_sentence"}
ROUTER_KEYS = {"id", "question", "route", "section", "split"}
ROUTER_ROUTES = ("summary", "detail")
ROUTER_PER_ROUTE = 20
GUIDE_SECTION_RE = re.compile(r"^## Section (\d+): \S")


# --------------------------------------------------------------------------
# Markdown helpers
# --------------------------------------------------------------------------
def _check_question_text(question: str, where: str, texts: set, problems: list) -> None:
    """Flag a question whose normalised text was seen before (and remember it)."""
    norm = " ".join(question.lower().split())
    if norm in texts:
        problems.append(f"{where}: duplicate question text")
    texts.add(norm)


def _check_split(split: object, where: str, problems: list) -> None:
    if split not in SPLITS:
        problems.append(f"{where}: split must be one of {SPLITS}")


def contains_sentence(body: str, sentence: str) -> bool:
    """True when ``sentence`` occurs in ``body`` as a whole sentence."""
    start = 0
    while True:
        i = body.find(sentence, start)
        if i < 0:
            return False
        before = body[i - 1] if i > 0 else "\n"
        after = body[i + len(sentence)] if i + len(sentence) < len(body) else "\n"
        if before in " \n" and after in " \n":
            return True
        start = i + 1


def word_count(text: str) -> int:
    return len(text.split())


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------
def _load_docs(problems: list[str]) -> dict[str, str]:
    docs = {}
    for name in [*TOPIC_DOCS, GUIDE_DOC, *DISTRACTOR_DOCS, LICENSE_DOC]:
        path = HANDBOOK_DIR / name
        if not path.is_file():
            problems.append(f"handbook: missing file {name}")
            continue
        docs[name] = path.read_text(encoding="utf-8")
    for path in sorted(HANDBOOK_DIR.glob("*.md")):
        if path.name not in docs and path.name not in DOC_SHAPES:
            problems.append(f"handbook: unexpected file {path.name}")
    return docs


def _check_docs(docs: dict[str, str], problems: list[str]) -> None:
    for name, (wmin, wmax, smin, smax) in DOC_SHAPES.items():
        text = docs.get(name)
        if text is None:
            continue
        where = f"handbook/{name}"
        n = word_count(text)
        if not wmin <= n <= wmax:
            problems.append(f"{where}: {n} words, expected {wmin}-{wmax}")
        lines = text.splitlines()
        if not lines or not lines[0].startswith("# "):
            problems.append(f"{where}: first line must be a '# Title'")
        heads = parse_headings(text)
        titles = [h for h in heads if h[0] == 1]
        if len(titles) != 1:
            problems.append(f"{where}: {len(titles)} '# ' titles, expected 1")
        h2 = [h for h in heads if h[0] == 2]
        if not smin <= len(h2) <= smax:
            problems.append(f"{where}: {len(h2)} '## ' sections, expected {smin}-{smax}")
        if any(h[0] > 3 for h in heads):
            problems.append(f"{where}: headings deeper than ### are not used")
        seen = set()
        for _, title, _ in heads:
            if title in seen:
                problems.append(f"{where}: duplicate heading {title!r}")
            seen.add(title)
        if re.search(r"^\s*\|.*\|\s*$", text, re.M):
            problems.append(f"{where}: contains a table")
        if "\t" in text or "\r" in text:
            problems.append(f"{where}: contains tabs or carriage returns")
        if name == GUIDE_DOC:
            numbers = [int(m.group(1)) for _, t, _ in h2
                       for m in [GUIDE_SECTION_RE.match("## " + t)] if m]
            if numbers != list(range(1, 9)):
                problems.append(f"{where}: '## Section N: ...' headings must be 1-8 in order, got {numbers}")
    lic = docs.get(LICENSE_DOC, "")
    if lic and ("CC0" not in lic or "LLM Challenge: 30 Days authors" not in lic):
        problems.append("handbook/LICENSE.md: must name CC0 and the course authors")


def _read_jsonl(path: Path, problems: list[str]) -> list[dict]:
    rows = []
    if not path.is_file():
        problems.append(f"missing file {path.relative_to(REPO_ROOT)}")
        return rows
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            problems.append(f"{path.name}:{n}: blank line")
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{path.name}:{n}: invalid JSON ({exc})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{path.name}:{n}: not a JSON object")
            continue
        rows.append(obj)
    return rows


def _check_ref(where: str, doc, section, sentence, docs, sections, problems) -> None:
    if not isinstance(doc, str) or not isinstance(section, str) or not isinstance(sentence, str):
        problems.append(f"{where}: doc, section and gold_sentence must be strings")
        return
    if doc not in docs:
        problems.append(f"{where}: unknown doc {doc!r}")
        return
    if doc in DISTRACTOR_DOCS or doc == LICENSE_DOC:
        problems.append(f"{where}: answerable questions must not point at {doc}")
    bodies = sections[doc].get(section)
    if bodies is None:
        problems.append(f"{where}: no heading {section!r} in {doc}")
        return
    if len(bodies) != 1:
        problems.append(f"{where}: heading {section!r} is not unique in {doc}")
    sentence = sentence.strip()
    if not sentence or sentence[-1] not in ".?!":
        problems.append(f"{where}: gold_sentence must be a full sentence ending in . ? or !")
    if not contains_sentence(docs[doc], sentence):
        problems.append(f"{where}: gold_sentence not found verbatim in {doc}: {sentence[:60]!r}")
    elif not any(contains_sentence(b, sentence) for b in bodies):
        problems.append(f"{where}: gold_sentence is in {doc} but not under {section!r}")


def _check_questions(docs: dict[str, str], problems: list[str]) -> None:
    rows = _read_jsonl(QUESTIONS_PATH, problems)
    sections = {name: section_texts(text) for name, text in docs.items()}
    ids, texts = set(), set()
    by_type: dict[str, list[str]] = {t: [] for t in QUESTION_TYPES}
    covered = set()
    for n, q in enumerate(rows, 1):
        where = f"questions.jsonl:{n}"
        keys = set(q)
        if keys != QUESTION_KEYS:
            problems.append(f"{where}: keys {sorted(keys)} != {sorted(QUESTION_KEYS)}")
            continue
        qid = q["id"]
        where = f"questions.jsonl:{qid}"
        if not isinstance(qid, str) or not re.fullmatch(r"q\d{3}", qid):
            problems.append(f"{where}: id must look like q001")
        if qid in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(qid)
        for key in ("question", "answer"):
            if not isinstance(q[key], str) or not q[key].strip():
                problems.append(f"{where}: {key} must be a non-empty string")
        if isinstance(q["question"], str):
            _check_question_text(q["question"], where, texts, problems)
        _check_split(q["split"], where, problems)
        qtype = q["type"]
        if qtype not in QUESTION_TYPES:
            problems.append(f"{where}: unknown type {qtype!r}")
            continue
        by_type[qtype].append(q["split"])
        if qtype == "unanswerable":
            if any(q[k] is not None for k in ("doc", "section", "gold_sentence", "second")):
                problems.append(f"{where}: unanswerable questions need doc/section/gold_sentence/second = null")
            if q["answer"] != UNANSWERABLE_ANSWER:
                problems.append(f"{where}: unanswerable answer must be {UNANSWERABLE_ANSWER!r}")
            continue
        _check_ref(where, q["doc"], q["section"], q["gold_sentence"], docs, sections, problems)
        covered.add(q["doc"])
        if qtype == "multi_hop":
            second = q["second"]
            if not isinstance(second, dict) or set(second) != SECOND_KEYS:
                problems.append(f"{where}: multi_hop needs second = {{doc, section, gold_sentence}}")
                continue
            _check_ref(where + " (second)", second["doc"], second["section"],
                       second["gold_sentence"], docs, sections, problems)
            if (second["doc"], second["section"]) == (q["doc"], q["section"]):
                problems.append(f"{where}: multi_hop must use two different sections or docs")
            covered.add(second["doc"])
        elif q["second"] is not None:
            problems.append(f"{where}: second must be null unless type is multi_hop")

    total = sum(len(v) for v in by_type.values())
    if not TOTAL_QUESTIONS[0] <= total <= TOTAL_QUESTIONS[1]:
        problems.append(f"questions.jsonl: {total} questions, expected {TOTAL_QUESTIONS[0]}-{TOTAL_QUESTIONS[1]}")
    for qtype, (lo, hi) in QUESTION_TYPES.items():
        splits = by_type[qtype]
        if not lo <= len(splits) <= hi:
            problems.append(f"questions.jsonl: {len(splits)} {qtype} questions, expected {lo}-{hi}")
        if splits and not {"dev", "test"} <= set(splits):
            problems.append(f"questions.jsonl: type {qtype} must appear in both splits")
        if len(splits) >= 10:
            share = splits.count("dev") / len(splits)
            if not 0.5 <= share <= 0.7:
                problems.append(f"questions.jsonl: {qtype} dev share {share:.2f} is not stratified near 0.6")
    if total:
        dev = sum(s.count("dev") for s in by_type.values()) / total
        if not DEV_SHARE[0] <= dev <= DEV_SHARE[1]:
            problems.append(f"questions.jsonl: dev share {dev:.2f}, expected {DEV_SHARE[0]}-{DEV_SHARE[1]}")
    for name in [*TOPIC_DOCS, GUIDE_DOC]:
        if rows and name not in covered:
            problems.append(f"questions.jsonl: no answerable question uses {name}")


def _check_router(docs: dict[str, str], problems: list[str]) -> None:
    rows = _read_jsonl(ROUTER_PATH, problems)
    guide = docs.get(GUIDE_DOC, "")
    guide_sections = {int(m.group(1)) for line in guide.splitlines()
                      for m in [GUIDE_SECTION_RE.match(line)] if m}
    ids, texts = set(), set()
    by_route: dict[str, list[str]] = {r: [] for r in ROUTER_ROUTES}
    detail_sections = set()
    for n, q in enumerate(rows, 1):
        where = f"router_questions.jsonl:{n}"
        if set(q) != ROUTER_KEYS:
            problems.append(f"{where}: keys {sorted(q)} != {sorted(ROUTER_KEYS)}")
            continue
        where = f"router_questions.jsonl:{q['id']}"
        if not isinstance(q["id"], str) or not re.fullmatch(r"r\d{2}", q["id"]):
            problems.append(f"{where}: id must look like r01")
        if q["id"] in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(q["id"])
        if not isinstance(q["question"], str) or not q["question"].strip():
            problems.append(f"{where}: question must be a non-empty string")
        else:
            _check_question_text(q["question"], where, texts, problems)
        _check_split(q["split"], where, problems)
        route = q["route"]
        if route not in ROUTER_ROUTES:
            problems.append(f"{where}: route must be one of {ROUTER_ROUTES}")
            continue
        by_route[route].append(q["split"])
        section = q["section"]
        if route == "summary":
            if section is not None:
                problems.append(f"{where}: summary questions need section = null")
        else:
            if isinstance(section, bool) or not isinstance(section, int) or not 1 <= section <= 8:
                problems.append(f"{where}: detail questions need an int section 1-8")
            elif section not in guide_sections:
                problems.append(f"{where}: section {section} not found in {GUIDE_DOC}")
            else:
                detail_sections.add(section)
    for route, splits in by_route.items():
        if len(splits) != ROUTER_PER_ROUTE:
            problems.append(f"router_questions.jsonl: {len(splits)} {route} questions, expected {ROUTER_PER_ROUTE}")
        if splits and splits.count("dev") != len(splits) // 2:
            problems.append(f"router_questions.jsonl: {route} split is not 50/50 ({splits.count('dev')} dev)")
    if rows and detail_sections != set(range(1, 9)):
        missing = sorted(set(range(1, 9)) - detail_sections)
        problems.append(f"router_questions.jsonl: no detail question for sections {missing}")


def validate() -> list[str]:
    """Return a list of problems with the handbook and golden sets."""
    problems: list[str] = []
    docs = _load_docs(problems)
    _check_docs(docs, problems)
    _check_questions(docs, problems)
    _check_router(docs, problems)
    return problems


def main() -> int:
    problems = validate()
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print("data corpus OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
