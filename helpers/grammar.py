"""Constrained decoding: a JSON schema becomes a regular expression (a grammar), and a logits
processor masks every token that would leave it (taught from scratch on Day 11).

    pattern = grammar.object_pattern(FactCard.model_json_schema())
    proc = grammar.GrammarLogitsProcessor(tok, pattern, prompt_len=ids.shape[1])
    model.generate(ids, logits_processor=LogitsProcessorList([proc]), ...)

Token texts come from `token_pieces`, which is right for byte-level BPE (GPT-2, SmolLM2) and for
SentencePiece tokenizers (Llama, Phi-3) alike: decoding a token on its own drops a SentencePiece
token's leading space, so a grammar that needs `": "` would dead-end.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import regex

MAX_STRING = 300  # characters in one string value: bounds every call
STRING = r'"[^"\\\n]{0,%d}"' % MAX_STRING
NUMBER = r"-?\d{1,15}(?:\.\d{1,8})?"
INTEGER = r"-?\d{1,15}"


def resolve_ref(schema: dict, root: dict) -> dict:
    """Follow `$ref`s of a JSON schema to their definitions in `root`."""
    while "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        schema = root.get("$defs", root.get("definitions", {}))[name]
    return schema


def value_pattern(schema: dict, root: dict | None = None) -> str:
    """A regular expression for the JSON values a parameter schema allows (strings without
    escapes, numbers, booleans, enums, optional values as `null`)."""
    root = root or {}
    schema = resolve_ref(schema, root)
    if "enum" in schema:
        return "(?:" + "|".join(regex.escape(json.dumps(v)) for v in schema["enum"]) + ")"
    if "anyOf" in schema:
        return "(?:" + "|".join(value_pattern(s, root) for s in schema["anyOf"]) + ")"
    kind = schema.get("type", "string")
    if kind == "string" and "maxLength" in schema:
        return r'"[^"\\\n]{0,%d}"' % min(int(schema["maxLength"]), MAX_STRING)
    patterns = {"string": STRING, "number": NUMBER, "integer": INTEGER, "boolean": "(?:true|false)", "null": "null"}
    if kind not in patterns:
        raise ValueError(f"parameter type {kind!r} is not supported by the grammar: use str, int, float, bool, "
                         "Literal[...] or Optional[...] fields")
    return patterns[kind]


def object_pattern(schema: dict) -> str:
    """A JSON object with every property of a flat object schema, in order, as `json.dumps` writes it."""
    props = (schema or {}).get("properties", {})
    body = ", ".join(regex.escape(json.dumps(k)) + ": " + value_pattern(v, schema) for k, v in props.items())
    return r"\{" + body + r"\}"


def call_pattern(specs: Sequence[dict]) -> str:
    """The grammar of valid tool calls `{"name": "<tool>", "arguments": {...}}`, one alternative per
    spec ({"name", "description", "parameters"} dicts)."""
    alternatives = [regex.escape('{"name": ' + json.dumps(s["name"]) + ', "arguments": ')
                    + object_pattern(s["parameters"]) + r"\}" for s in specs]
    return "(?:" + "|".join(alternatives) + ")"


def _anchor(tok: Any) -> int:
    """A plain, non-special token to decode in front of each token (so no piece is at text start)."""
    special = set(tok.all_special_ids)
    for text in ("a", "x", "0", "."):
        ids = tok.encode(text, add_special_tokens=False)
        if ids and ids[-1] not in special:
            return ids[-1]
    return next(i for i in range(len(tok)) if i not in special)


@lru_cache(maxsize=8)
def token_pieces(tok: Any) -> tuple:
    """The text each token id adds when it follows other text, cached per tokenizer (None for
    special tokens, which never appear inside a call).

    Each piece is decode([anchor, id]) minus decode([anchor]): decoding a token alone is wrong for
    SentencePiece tokenizers, whose decoders strip the leading space of the first token."""
    special = set(tok.all_special_ids)
    anchor = _anchor(tok)
    head = tok.decode([anchor])
    pieces: list[str | None] = []
    for i in range(len(tok)):
        if i in special:
            pieces.append(None)
            continue
        text = tok.decode([anchor, i])
        pieces.append(text[len(head):] if text.startswith(head) else tok.decode([i]))
    return tuple(pieces)


try:  # a real transformers LogitsProcessor when transformers is there (it always is in the course env)
    from transformers import LogitsProcessor as _Base
except ImportError:  # pragma: no cover
    _Base = object


class GrammarLogitsProcessor(_Base):
    """Masks every next token that would take the generated text out of `pattern`.

    At each step the candidates are tried in order of score (the `top_n` best first, then, if none
    fits, the whole vocabulary): a token is allowed when text-so-far + token is still a prefix of
    some string in the grammar (`regex` partial matching). Once the text is a complete match, only
    end-of-sequence is allowed. `interventions` counts the steps at which the model's own favourite
    token was not allowed.
    """

    def __init__(self, tok: Any, pattern: str, prompt_len: int, top_n: int = 64) -> None:
        self.grammar = regex.compile(pattern)
        self.pieces = token_pieces(tok)
        self.eos = tok.eos_token_id
        self.prompt_len = prompt_len
        self.top_n = top_n
        self.interventions = 0
        self.steps = 0

    def allowed(self, text: str, order: Sequence[int]) -> list[int]:
        """The token ids among `order` that keep `text` inside the grammar."""
        ok = []
        for i in order:
            piece = self.pieces[i] if i < len(self.pieces) else None  # models may pad their vocab
            if piece and self.grammar.fullmatch(text + piece, partial=True):
                ok.append(i)
        return ok

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        masked = torch.full_like(scores, float("-inf"))
        for b in range(input_ids.shape[0]):
            text = "".join(self.pieces[i] or "" for i in input_ids[b, self.prompt_len:].tolist())
            self.steps += 1
            if self.grammar.fullmatch(text):
                keep = [self.eos]
            else:
                best = torch.topk(scores[b], min(self.top_n, scores.shape[-1])).indices.tolist()  # sort all only if none fits
                keep = self.allowed(text, best)
                if not keep:
                    order = torch.argsort(scores[b], descending=True).tolist()
                    keep = self.allowed(text, order[self.top_n:])
                if not keep:
                    raise RuntimeError(f"no token continues {text!r} inside the grammar")
                self.interventions += int(keep[0] != best[0])
            masked[b, keep] = scores[b, keep]
        return masked
