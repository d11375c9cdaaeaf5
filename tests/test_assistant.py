"""The course assistant (helpers.assistant, helpers.webapp) with a scripted generator and a tiny index:
routing, tools, memory, streaming, the guardrails hook and the web app's input checks. No model loads."""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
from llama_index.core.schema import TextNode

from helpers import assistant as A

CHUNKS = [
    ("09_rag_basics.md", "similarity_top_k sets how many chunks the retriever returns; the default is 2."),
    ("09_rag_basics.md", "Chunk overlap keeps a sentence that a boundary cuts readable in both chunks."),
    ("05_attention.md", "Multi-head attention runs several attention heads in parallel and concatenates them."),
    ("day16_hybrid_search.ipynb", "Relative score fusion min-max scales each list and weights BM25 by 0.7."),
]


def words_embed(texts, store=True):
    """A bag-of-words hashing embedder: deterministic, instant, good enough to rank the tiny index."""
    out = np.zeros((len(texts), 256), dtype=np.float32)
    for row, text in enumerate(texts):
        for w in text.lower().replace("?", " ").replace(";", " ").split():
            out[row, int(hashlib.md5(w.encode()).hexdigest(), 16) % 256] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def make_nodes():
    nodes = []
    for i, (doc, text) in enumerate(CHUNKS):
        meta = {"doc": doc, "title": doc, "kind": "handbook"}
        if doc.endswith(".ipynb"):
            meta |= {"kind": "notebook", "day": 16, "cell": 3, "to": 5}
        nodes.append(TextNode(id_=f"n{i}", text=text, metadata=meta))
    return nodes


def make_bot(**kwargs):
    kwargs.setdefault("generator", A.ScriptedGenerator("It returns 2 chunks."))
    return A.Assistant(nodes=make_nodes(), embed=words_embed, **kwargs)


def test_calculator_is_arithmetic_only():
    assert A.calculate("12 * (3 + 4)") == 84
    assert A.calculate("2 ** 10 / 4") == 256
    for bad in ("__import__('os').system('true')", "open('x')", "9 ** 9 ** 9", "x + 1"):
        with pytest.raises(ValueError):
            A.calculate(bad)
    assert A.find_arithmetic("What is 12 * 7 plus change?") == "12 * 7"
    assert A.find_arithmetic("What does Day 16 say about top 3?") is None  # numbers without an operator


def test_routes_tools_and_notebook_day():
    bot = make_bot()
    assert bot.route("What is 17 * 3?") == "calculate"
    assert bot.route("In the Day 16 notebook, which fusion wins?") == "notebook"
    assert A.notebook_day("Which two indexes does the Day 20 router choose between?") is None  # the guide's own days
    reply = bot.answer("What is 17 * 3?")
    assert reply.text == "17 * 3 = 51" and reply.route == "calculate" and not bot.generator.calls, reply


def test_notebook_tool_searches_only_that_day():
    bot = make_bot()
    reply = bot.answer("In the Day 16 notebook, how is similarity_top_k fused?")
    assert reply.route == "notebook" and {s.doc for s in reply.sources} == {"day16_hybrid_search.ipynb"}, reply.sources


def test_answer_has_sources_links_and_stream_matches():
    bot = make_bot()
    events = list(bot.stream("What does similarity_top_k set?", "s1"))
    assert [e["type"] for e in events][:2] == ["sources", "token"] and events[-1]["type"] == "done"
    answer = events[-1]["answer"]
    streamed = "".join(e["text"] for e in events if e["type"] == "token")
    assert streamed.strip() == answer.text == "It returns 2 chunks.", (streamed, answer.text)
    assert answer.sources[0].doc == "09_rag_basics.md" and answer.sources[0].url == "/source/09_rag_basics.md"
    prompt = bot.generator.calls[-1][-1]["content"]
    assert "similarity_top_k sets how many chunks" in prompt and prompt.endswith("Question: What does similarity_top_k set?")


def test_memory_rewrites_follow_up_and_is_per_session():
    bot = make_bot()
    bot.answer("What does similarity_top_k set?", "a")
    follow = bot.answer("And its default?", "a")
    assert follow.query == "What does similarity_top_k set? And its default?", follow.query
    assert follow.sources[0].doc == "09_rag_basics.md"
    assert bot.answer("And its default?", "b").query == "And its default?", "memory leaked across sessions"
    forgetful = make_bot(memory=False)
    forgetful.answer("What does similarity_top_k set?", "a")
    assert forgetful.answer("And its default?", "a").query == "And its default?"
    assert len(bot.generator.calls[1]) == 4, "the previous turn should be in the prompt (system, user, assistant, user)"


class StubGuardrails:
    """Records each hook call; blocks questions with 'forbidden', drops chunks with 'overlap',
    rejects answers with '2 chunks' (unless told otherwise), redacts 'secret'."""

    def __init__(self, reject_output=True):
        self.calls, self.reject_output = [], reject_output

    def check_input(self, question):
        self.calls.append("check_input")
        return SimpleNamespace(allowed="forbidden" not in question, reason="I can't help with that.",
                               text=question.replace("secret", "[REDACTED]"))

    def filter_chunks(self, chunks):
        self.calls.append("filter_chunks")
        return [c for c in chunks if "overlap" not in c]

    def check_output(self, answer, context):
        self.calls.append("check_output")
        ok = not (self.reject_output and "2 chunks" in answer)
        return SimpleNamespace(allowed=ok, reason="The answer was withheld.", text=answer)

    def redact(self, text):
        self.calls.append("redact")
        return text.replace("secret", "[REDACTED]")


def test_guardrails_hook():
    g = StubGuardrails()
    bot = make_bot(guardrails=g)
    blocked = bot.answer("a forbidden question")
    assert blocked.route == "blocked" and blocked.text == "I can't help with that." and not bot.generator.calls
    reply = bot.answer("What does similarity_top_k set? Also chunk overlap? secret")
    assert g.calls[-5:] == ["check_input", "filter_chunks", "check_output", "redact", "redact"], g.calls
    assert all("overlap" not in c for c in reply.context) and reply.sources, reply.context
    assert reply.text == "The answer was withheld.", "check_output's verdict should replace the answer"
    assert "secret" not in json.dumps(bot.log) and "[REDACTED]" in bot.generator.calls[-1][-1]["content"]
    tokens = [e for e in make_bot(guardrails=StubGuardrails(reject_output=False)).stream("What does similarity_top_k set?")
              if e["type"] == "token"]
    assert len(tokens) == 1, "with guardrails the answer is checked first, then sent as one piece"


def test_webapp_validation_stream_and_sources():
    from fastapi.testclient import TestClient

    from helpers.webapp import create_app

    client = TestClient(create_app(make_bot()))
    assert 'id="question"' in client.get("/").text
    for bad, words in (("", "empty"), ("   ", "empty"), ("x" * 10_000, "too long")):
        r = client.post("/api/ask", json={"question": bad})
        assert r.status_code == 422 and words in r.json()["detail"], (r.status_code, r.text[:200])
    assert client.post("/api/stream", json={"question": "x" * (A.MAX_QUESTION_CHARS + 1)}).status_code == 422
    assert client.post("/api/ask", json={"question": "x" * A.MAX_QUESTION_CHARS}).status_code == 200
    r = client.post("/api/stream", json={"question": "What does similarity_top_k set?", "session_id": "t"})
    events = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    assert events[0]["type"] == "sources" and events[-1]["answer"]["text"] == "It returns 2 chunks.", events
    url = events[0]["sources"][0]["url"]
    assert "similarity_top_k" in client.get(url).text, f"the source link {url} should show the handbook file"
    assert client.get("/source/..%2Fpyproject.toml").status_code == 404
