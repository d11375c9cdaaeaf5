"""Guardrails for a RAG assistant: prompt-injection detection and PII redaction (Day 31; Day 30 uses them).

    from helpers.guardrails import default_guardrails
    g = default_guardrails()                  # trains the injection detector (a few seconds), once per process
    v = g.check_input("I am maria@example.com. What is a KV cache?")
    v.allowed, v.reason, v.text               # True, 'redacted 1 PII span(s): EMAIL', 'I am [EMAIL]. What is ...'
    chunks = g.filter_chunks(chunks)          # drops the sentences the detector flags (and empty chunks)
    v = g.check_output(answer, context)       # blocks an answer that repeats a planted link/word or leaks secrets

Two detectors, each a rule beside a small learned model:
- injections: `keyword_flag` (a regular expression over the classic phrases) and `InjectionDetector`,
  logistic regression on all-MiniLM-L6-v2 sentence embeddings, trained on the course-written attack set
  (`data/guardrails/injections.jsonl`, split by template family), its threshold chosen on dev;
- PII: `find_pii` with regular expressions (e-mail, IBAN with its mod-97 check, card numbers with the Luhn
  check, phone numbers of 7 to 15 digits, street addresses, names after a cue such as "my name is" or "I am"), and `PiiClassifier`,
  logistic regression over span features, which finds names without a cue (`data/guardrails/pii.jsonl`).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .config import DATA_DIR

GUARD_DIR = DATA_DIR / "guardrails"
INJECTIONS_FILE = GUARD_DIR / "injections.jsonl"
PII_FILE = GUARD_DIR / "pii.jsonl"
SPLITS = ("train", "dev", "test")
PII_TYPES = ("NAME", "EMAIL", "PHONE", "IBAN", "CARD", "ADDRESS")


@dataclass
class Verdict:
    """What a guardrail decided: `allowed`, why (`reason`), and the text to use (redacted when needed)."""

    allowed: bool
    reason: str
    text: str


def _read(path: Any, split: str | None) -> list[dict]:
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r["split"] == split]


def load_injections(split: str | None = None) -> list[dict]:
    """The attack set: {text, label (1 = injection), kind (attack/lookalike/handbook), family, split}."""
    return _read(INJECTIONS_FILE, split)


def load_pii(split: str | None = None) -> list[dict]:
    """The PII set: {text, entities: [{type, text}], split}; sentences without entities are hard negatives."""
    return _read(PII_FILE, split)


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk (a simple splitter: end punctuation or a line break)."""
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if p.strip()]


# --------------------------------------------------------------------------- prompt injection
KEYWORD_RULE = re.compile(
    r"ignore (?:all |any |the )?(?:previous|prior|above|earlier)|disregard|system prompt|new instructions|"
    r"override|forget (?:everything|all)|you are now|developer mode", re.I)


def keyword_flag(text: str) -> bool:
    """The baseline: does the text contain one of the classic injection phrases?"""
    return bool(KEYWORD_RULE.search(text))


class InjectionDetector:
    """Logistic regression on normalised MiniLM sentence embeddings: P(injection | sentence)."""

    def __init__(self, encoder: Any, threshold: float = 0.5, C: float = 4.0) -> None:
        self.encoder, self.threshold, self.C = encoder, threshold, C
        self.clf: Any = None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.encoder.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                              show_progress_bar=False))

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> InjectionDetector:
        from sklearn.linear_model import LogisticRegression

        self.clf = LogisticRegression(C=self.C, max_iter=2000, class_weight="balanced")
        self.clf.fit(self.embed(texts), np.asarray(labels))
        return self

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        if self.clf is None:
            raise RuntimeError("fit the detector first")
        if not texts:
            return np.zeros(0)
        return self.clf.predict_proba(self.embed(texts))[:, 1]

    def choose_threshold(self, texts: Sequence[str], labels: Sequence[int]) -> float:
        """The threshold with the best F1 on (dev) texts; among equals, the middle of the best range."""
        s, y = self.scores(texts), np.asarray(labels)
        grid = np.unique(np.concatenate([s, [0.5]]))
        f1 = np.array([_f1(s >= t, y) for t in grid])
        best = grid[f1 >= f1.max() - 1e-12]
        lo, hi = best.min(), best.max()
        above = s[s > hi]  # the best range ends halfway to the next score up
        self.threshold = float((lo + hi) / 2 if hi > lo else (lo + (above.min() if len(above) else 1.0)) / 2)
        return self.threshold

    def flag(self, texts: Sequence[str]) -> np.ndarray:
        return self.scores(texts) >= self.threshold


def _f1(pred: np.ndarray, y: np.ndarray) -> float:
    tp = float(np.sum(pred & (y == 1)))
    return 2 * tp / max(1.0, float(pred.sum() + (y == 1).sum()))


# --------------------------------------------------------------------------- PII
@dataclass(frozen=True)
class Entity:
    type: str
    start: int
    end: int
    text: str


_CAP = r"[A-Z][a-z]+"
PII_RULES: dict[str, re.Pattern] = {
    "EMAIL": re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    "IBAN": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
    "CARD": re.compile(r"\b(?:\d{4}[ -]?){3}\d{4}\b"),
    "ADDRESS": re.compile(rf"\b\d{{1,5}} (?:{_CAP} ){{1,3}}(?:Street|Road|Avenue|Lane|Way|Drive|Square|Place)\b"),
    "PHONE": re.compile(r"(?<![\w.])(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,8}){1,3}(?!\w|\.\d)"),
    "NAME": re.compile(rf"(?:\b(?:Mr|Ms|Mrs|Dr)\.? |\b[Mm]y name is |\b[Tt]his is |\bI am |\bI'm )({_CAP} {_CAP})"),
}
NAME_CANDIDATE = re.compile(rf"\b{_CAP}(?: {_CAP}){{1,2}}\b")


def _luhn(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    return sum(d if i % 2 == 0 else (2 * d - 9 if d > 4 else 2 * d) for i, d in enumerate(digits)) % 10 == 0


def _iban_ok(iban: str) -> bool:
    raw = iban.replace(" ", "")
    return len(raw) >= 15 and int("".join(str(int(c, 36)) for c in raw[4:] + raw[:4])) % 97 == 1


def _phone_ok(number: str) -> bool:
    return 7 <= sum(c.isdigit() for c in number) <= 15  # E.164: at most 15 digits


VALID = {"CARD": _luhn, "IBAN": _iban_ok, "PHONE": _phone_ok}


def _free(ents: Iterable[Entity], start: int, end: int) -> bool:
    return all(end <= e.start or start >= e.end for e in ents)


def find_pii_rules(text: str) -> list[Entity]:
    """PII spans found by the regular expressions alone, in priority order (no overlaps)."""
    found: list[Entity] = []
    for kind, pattern in PII_RULES.items():
        for m in pattern.finditer(text):
            g = 1 if kind == "NAME" else 0
            start, end = m.span(g)
            if VALID.get(kind, lambda s: True)(m.group(g)) and _free(found, start, end):
                found.append(Entity(kind, start, end, m.group(g)))
    return sorted(found, key=lambda e: e.start)


def _words(text: str) -> list[str]:
    return re.findall(r"[\w@.+-]+|[()]", text)


def _shape(s: str) -> str:
    return re.sub(r"(.)\1+", r"\1\1", re.sub(r"\d", "d", re.sub(r"[A-Z]", "X", re.sub(r"[a-z]", "x", s))))


class PiiClassifier:
    """Logistic regression over span features (shape, context words, common-word flags) for runs of
    capitalised words: NAME or not. Phone numbers stay with the rule: a learned phone filter, tried on
    dev, missed real numbers and removed no false alarm."""

    kinds = ("NAME",)

    def __init__(self, vocab: Iterable[str] = ()) -> None:
        self.vocab = set(vocab)
        self.models: dict[str, Any] = {}

    def features(self, text: str, start: int, end: int) -> dict[str, float]:
        span, before, after = text[start:end], _words(text[:start])[-2:], _words(text[end:])[:2]
        f = {f"shape={_shape(span)}": 1.0, "at_start": float(start == 0), "plus": float(span.startswith("+")),
             f"n_words={len(span.split())}": 1.0}
        for i, w in enumerate(reversed(before)):
            f[f"prev{i}={w.lower()}"] = 1.0
        for i, w in enumerate(after):
            f[f"next{i}={w.lower()}"] = 1.0
        for i, w in enumerate(span.split()):
            known = w.lower() in self.vocab
            f[f"w{i}_in_vocab"] = float(known)
            if known:  # common words ("Yesterday", "The") are rarely names; rare ones often are
                f[f"w{i}={w.lower()}"] = 1.0
            if known and start == 0 and i == 0:
                f["starts_sentence_with_word"] = 1.0
            f[f"w{i}_suffix={w[-2:].lower()}"] = 1.0
        return f

    def candidates(self, text: str, kind: str) -> list[tuple[int, int]]:
        if kind == "PHONE":
            return [m.span() for m in PII_RULES["PHONE"].finditer(text)]
        spans = []
        for m in NAME_CANDIDATE.finditer(text):  # every 2- or 3-word sub-run of a capitalised run
            words = [(w.start() + m.start(), w.end() + m.start()) for w in re.finditer(r"\S+", m.group())]
            spans += [(words[i][0], words[j][1]) for i in range(len(words)) for j in range(i + 1, min(i + 3, len(words)))]
        return spans

    def fit(self, rows: Sequence[dict]) -> PiiClassifier:
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        for kind in self.kinds:
            X, y = [], []
            for r in rows:
                gold = {e["text"] for e in r["entities"] if e["type"] == kind}
                for s, e in self.candidates(r["text"], kind):
                    X.append(self.features(r["text"], s, e))
                    y.append(int(r["text"][s:e] in gold))
            self.models[kind] = make_pipeline(DictVectorizer(), LogisticRegression(C=1.0, max_iter=2000)).fit(X, y)
        return self

    def score(self, text: str, kind: str) -> list[tuple[float, int, int]]:
        spans = self.candidates(text, kind)
        if not spans:
            return []
        p = self.models[kind].predict_proba([self.features(text, s, e) for s, e in spans])[:, 1]
        return [(float(q), s, e) for q, (s, e) in zip(p, spans)]


def find_pii(text: str, classifier: PiiClassifier | None = None) -> list[Entity]:
    """PII spans: the rules, and with a classifier, the names it finds without a cue."""
    ents = find_pii_rules(text)
    if classifier is None:
        return ents
    for p, s, e in sorted(classifier.score(text, "NAME"), reverse=True):
        if p >= 0.5 and _free(ents, s, e):
            ents.append(Entity("NAME", s, e, text[s:e]))
    return sorted(ents, key=lambda x: x.start)


def redact_spans(text: str, ents: Sequence[Entity]) -> str:
    for x in sorted(ents, key=lambda x: -x.start):
        text = text[:x.start] + f"[{x.type}]" + text[x.end:]
    return text


# --------------------------------------------------------------------------- the guardrails
LINK = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\b(?:https?://)?(?:[\w-]+\.)+(?:example|com|org|net|io)\b(?:/[\w./-]*)?", re.I)
PAYLOAD = re.compile(r"'[^']{3,60}'|\"[^\"]{3,60}\"|\b[A-Z]{4,}\b")
SECRET = re.compile(r"\b(?:sk|api|key)[-_][A-Za-z0-9]{8,}\b")


def payloads(sentence: str) -> set[str]:
    """What an injected sentence wants repeated: links, e-mail addresses, quoted phrases, ALL-CAPS words."""
    found = {m.group().lower().strip("'\"") for m in LINK.finditer(sentence)}
    found |= {m.group().strip("'\"").lower() for m in PAYLOAD.finditer(sentence)}
    return {p for p in found if p not in {"important", "system", "note", "admin"}}


@dataclass
class Guardrails:
    """Input, context and output checks around a RAG answer (see the module docstring)."""

    detector: InjectionDetector
    pii: PiiClassifier | None = None
    use_keywords: bool = False  # also block inputs the keyword rule flags
    secrets: tuple[str, ...] = ()  # strings that must never appear in an answer (system prompt, keys)
    flagged: list[str] = field(default_factory=list)  # the sentences the last filter_chunks dropped

    def redact(self, text: str) -> str:
        return redact_spans(text, find_pii(text, self.pii))

    def injection_scores(self, text: str) -> list[tuple[float, str]]:
        sentences = split_sentences(text)
        return list(zip(self.detector.scores(sentences).tolist(), sentences))

    def check_input(self, question: str) -> Verdict:
        ents = find_pii(question, self.pii)
        text = redact_spans(question, ents)
        hits = [(s, t) for s, t in self.injection_scores(question) if s >= self.detector.threshold]
        if self.use_keywords and keyword_flag(question):
            hits.append((1.0, KEYWORD_RULE.search(question).group()))
        if hits:
            score, sentence = max(hits)
            return Verdict(False, f"blocked: looks like a prompt injection (score {score:.2f}): {sentence[:80]!r}", text)
        reason = f"redacted {len(ents)} PII span(s): {', '.join(sorted({e.type for e in ents}))}" if ents else "ok"
        return Verdict(True, reason, text)

    def filter_chunks(self, chunks: list[str]) -> list[str]:
        """Each chunk without the sentences the detector flags; chunks left empty are dropped."""
        self.flagged, kept = [], []
        for chunk in chunks:
            scored = self.injection_scores(chunk)
            bad = [t for s, t in scored if s >= self.detector.threshold]
            self.flagged += bad
            if not bad:
                kept.append(chunk)
            elif len(bad) < len(scored):
                kept.append(" ".join(t for s, t in scored if s < self.detector.threshold))
        return kept

    def check_output(self, answer: str, context: str | Sequence[str]) -> Verdict:
        """Block an answer that repeats what an injected context sentence asked for (a link, an address, a
        quoted phrase, an ALL-CAPS word), a link found nowhere in the clean context, or a secret; redact PII."""
        context = context if isinstance(context, str) else "\n".join(context)
        scored = self.injection_scores(context)
        clean = " ".join(t for s, t in scored if s < self.detector.threshold).lower()
        planted = set().union(*[payloads(t) for s, t in scored if s >= self.detector.threshold] or [set()])
        low = answer.lower()
        for p in sorted(planted):
            if p in low:
                return Verdict(False, f"blocked: the answer repeats {p!r} from an injected instruction", "")
        for m in LINK.finditer(answer):
            if m.group().lower() not in clean:
                return Verdict(False, f"blocked: the answer links to {m.group()!r}, which no trusted source mentions", "")
        for secret in self.secrets:
            if secret and secret.lower() in low:
                return Verdict(False, "blocked: the answer leaks a secret", "")
        if SECRET.search(answer):
            return Verdict(False, "blocked: the answer contains something shaped like an API key", "")
        text = self.redact(answer)
        return Verdict(True, "ok" if text == answer else "allowed with PII redacted", text)

    @staticmethod
    def check_tool_call(name: str, arguments: dict, allowed: Iterable[str], user_text: str = "") -> Verdict:
        """A tool call passes when the tool is on the task's allowlist and every link or e-mail address in its
        arguments already appears in what the user wrote."""
        allowed = set(allowed)
        if name not in allowed:
            return Verdict(False, f"blocked: tool {name!r} is not allowed for this task (allowed: {sorted(allowed)})", "")
        values = " ".join(str(v) for v in arguments.values())
        for m in LINK.finditer(values):
            if m.group().lower() not in user_text.lower():
                return Verdict(False, f"blocked: argument {m.group()!r} did not come from the user", "")
        return Verdict(True, "ok", json.dumps({"name": name, "arguments": arguments}))


def train_detector(encoder: Any = None) -> InjectionDetector:
    """The injection detector, fitted on the train split, its threshold chosen on dev."""
    if encoder is None:
        from .embeddings import sentence_model

        encoder = sentence_model()
    detector = InjectionDetector(encoder)
    train, dev = load_injections("train"), load_injections("dev")
    detector.fit([r["text"] for r in train], [r["label"] for r in train])
    detector.choose_threshold([r["text"] for r in dev], [r["label"] for r in dev])
    return detector


def train_pii_classifier(encoder: Any = None) -> PiiClassifier:
    """The PII span classifier on the train split; `encoder` (a SentenceTransformer) lends its word-piece vocabulary."""
    vocab = encoder.tokenizer.get_vocab() if encoder is not None else {}
    return PiiClassifier(vocab).fit(load_pii("train"))


@lru_cache(maxsize=1)
def default_guardrails() -> Guardrails:
    """Guardrails with both detectors trained on the course-written sets (once per process, a few seconds)."""
    from .embeddings import sentence_model

    encoder = sentence_model()
    return Guardrails(detector=train_detector(encoder), pii=train_pii_classifier(encoder))
