"""Gold-fact support: the numbers and names an answer states, and whether a context holds them.

This is the course's correctness signal for generated answers (no LLM judge needed): an answer
that states a number or a name the context lacks is not supported by it.

    facts.unsupported_facts("Phi-3 Mini has 32 layers.", context)   # ['32'] if the context says 28
"""
from __future__ import annotations

import re

_NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    " sixteen seventeen eighteen nineteen twenty".split())}
_NUMBER_WORDS.update({"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000"})


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`: Markdown heading lines dropped, split after . ! or ? and a space."""
    body = " ".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", body) if len(s.split()) >= 1 and s.strip()]


def _norm_numbers(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 4,000 -> 4000
    return re.sub(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: _NUMBER_WORDS[m.group(1).lower()], text,
                  flags=re.I)


def facts(text: str) -> set[str]:
    """The checkable facts of a text: numbers (digits or number words) and names (capitalised
    words that do not start a sentence, acronyms, and tokens mixing letters and digits)."""
    text = _norm_numbers(text)
    found = set(re.findall(r"\d+(?:\.\d+)?", text))
    for sentence in split_sentences(text) or [text]:
        for i, w in enumerate(re.findall(r"[A-Za-z][\w-]*", sentence)):
            w = w.strip("-")
            if re.search(r"\d", w) or sum(c.isupper() for c in w) >= 2 or (i > 0 and w[:1].isupper()):
                found.add(w.lower())
    return found


def fact_support(sentence: str, context: str) -> float:
    """Fraction of the facts of `sentence` found in `context` (1.0 when it states none)."""
    wanted = facts(sentence)
    return 1.0 - len(unsupported_facts(sentence, context)) / len(wanted) if wanted else 1.0


def unsupported_facts(text: str, context: str) -> list[str]:
    """The facts of `text` (see `facts`, lower-cased) that do not occur in `context`, sorted."""
    ctx = _norm_numbers(context).lower()
    return sorted(f for f in facts(text) if not re.search(r"(?<![\w.])" + re.escape(f) + r"(?![\w])", ctx))



_NAME_POOL = ("OpenAI", "DeepMind", "NVIDIA", "IBM", "GitHub", "PyTorch", "LinkedIn", "YouTube")


def swap_facts(answer: str, context: str = "") -> str | None:
    """A wrong version of `answer` with exactly one fact changed: its first number (n -> n + 1,
    decimals kept), or if it has none, its first name (replaced by a name from a fixed pool that
    does not occur in `context`). None when the answer states no number or name."""
    text = _norm_numbers(answer)
    number = re.search(r"\d+(?:\.\d+)?", text)
    if number:
        whole, _, frac = number.group(0).partition(".")
        return text[:number.start()] + str(int(whole) + 1) + ("." + frac if frac else "") + text[number.end():]
    spare = [n for n in _NAME_POOL if n.lower() not in context.lower() and n.lower() not in answer.lower()]
    for word in re.findall(r"[A-Za-z][\w-]*", text):
        if word.strip("-").lower() in facts(answer) and spare:
            return re.sub(r"\b" + re.escape(word) + r"\b", spare[0], text, count=1)
    return None
