"""The course assistant served on localhost (Day 30): FastAPI, one plain HTML page, streamed tokens.

    python -m helpers.webapp                      # http://127.0.0.1:8030 (`make assistant`)
    python -m helpers.webapp --guardrails         # with Day 31's guardrails (or ASSISTANT_GUARDRAILS=1)

Routes: GET / (the page: inline JavaScript reads the streamed answer with fetch and shows the source
links), POST /api/stream (newline-delimited JSON events: sources, token..., done), POST /api/ask (the
whole answer as JSON), GET /source/<file>[?cell=N&to=M] (a source as plain text), GET /health.
A question that is empty or longer than `MAX_QUESTION_CHARS` (2,000) characters gets HTTP 422 with a
message the page shows. Generation runs under the assistant's lock (one at a time); FastAPI serves
the waiting requests from its thread pool.
"""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from typing import Any

from .assistant import MAX_QUESTION_CHARS, Assistant
from .config import HANDBOOK_DIR, REPO_ROOT

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Course assistant</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}
textarea{width:100%;font-size:1em}#error{color:#b00020}#answer{white-space:pre-wrap;min-height:2em;
border-left:3px solid #ccc;padding-left:.6em}#route{color:#666;font-size:.9em}</style></head>
<body><h1>LLM Challenge: course assistant</h1>
<p>Ask about the handbook or a day's notebook (up to __LIMIT__ characters). Arithmetic goes to a calculator.</p>
<textarea id="question" rows="3" placeholder="What does similarity_top_k set?"></textarea>
<p><button id="ask">Ask</button> <span id="status"></span></p>
<div id="error" role="alert"></div><div id="route"></div><div id="answer"></div>
<h2>Sources</h2><ol id="sources"></ol>
<script>
const session = Math.random().toString(36).slice(2);
const $ = (id) => document.getElementById(id);
async function ask() {
  $("error").textContent = ""; $("answer").textContent = ""; $("sources").innerHTML = "";
  $("route").textContent = ""; $("status").textContent = "thinking...";
  let res;
  try {
    res = await fetch("/api/stream", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({question: $("question").value, session_id: session})});
  } catch (e) { $("error").textContent = "The server did not answer: " + e; $("status").textContent = ""; return; }
  if (!res.ok) {
    let msg = "HTTP " + res.status;
    try { const body = await res.json(); msg = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail); } catch (e) {}
    $("error").textContent = msg; $("status").textContent = ""; return;
  }
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let cut;
    while ((cut = buffer.indexOf("\\n")) >= 0) {
      const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 1);
      if (line.trim()) show(JSON.parse(line));
    }
  }
  $("status").textContent = "";
}
function show(event) {
  if (event.type === "sources") {
    $("route").textContent = "route: " + event.route;
    for (const s of event.sources) {
      const li = document.createElement("li"), a = document.createElement("a");
      a.href = s.url; a.textContent = s.title || s.doc; a.className = "source"; a.target = "_blank";
      li.appendChild(a); li.appendChild(document.createTextNode(" (" + s.doc + ")"));
      $("sources").appendChild(li);
    }
  } else if (event.type === "token") {
    $("answer").textContent += event.text;
  } else if (event.type === "done") {
    $("answer").textContent = event.answer.text;  // the final text (guardrails may have replaced it)
    $("answer").dataset.done = "1";
  } else if (event.type === "error") {
    $("error").textContent = event.message;
  }
}
$("ask").addEventListener("click", ask);
</script></body></html>
""".replace("__LIMIT__", f"{MAX_QUESTION_CHARS:,}")


def check_question(question: Any) -> str:
    """The question, stripped; raises HTTP 422 with a readable message when it is missing, empty or too long."""
    from fastapi import HTTPException

    if not isinstance(question, str) or not question.strip():
        raise HTTPException(status_code=422, detail="Please type a question: the question is empty.")
    if len(question) > MAX_QUESTION_CHARS:
        raise HTTPException(status_code=422, detail=(
            f"The question is too long: {len(question):,} characters; the limit is {MAX_QUESTION_CHARS:,}."))
    return question.strip()


def create_app(assistant: Assistant | None = None, max_new_tokens: int | None = None) -> Any:
    """The FastAPI app around `assistant` (built on first use when None)."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse

    app = FastAPI(title="Course assistant")
    state: dict[str, Assistant] = {}

    def bot() -> Assistant:
        if "bot" not in state:
            state["bot"] = assistant or Assistant()
        return state["bot"]

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return PAGE

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "chunks": len(bot().nodes)}

    def events(question: str, session_id: str) -> Iterator[str]:
        try:
            for event in bot().stream(question, session_id, max_new_tokens):
                if event["type"] == "done":
                    event = {"type": "done", "answer": event["answer"].to_dict()}
                yield json.dumps(event) + "\n"
        except Exception as exc:  # the page shows it; the server keeps serving
            yield json.dumps({"type": "error", "message": f"The assistant failed: {type(exc).__name__}: {exc}"}) + "\n"

    @app.post("/api/stream")
    def stream(payload: dict[str, Any]) -> StreamingResponse:
        question = check_question(payload.get("question"))
        session = str(payload.get("session_id") or "default")[:64]
        return StreamingResponse(events(question, session), media_type="application/x-ndjson")

    @app.post("/api/ask")
    def ask(payload: dict[str, Any]) -> dict[str, Any]:
        question = check_question(payload.get("question"))
        session = str(payload.get("session_id") or "default")[:64]
        return bot().answer(question, session, max_new_tokens).to_dict()

    @app.get("/source/{name}", response_class=PlainTextResponse)
    def source(name: str, cell: int | None = None, to: int | None = None) -> str:
        if "/" in name or name.startswith("."):
            raise HTTPException(status_code=404, detail="no such source")
        if name.endswith(".md") and (HANDBOOK_DIR / name).is_file():
            return (HANDBOOK_DIR / name).read_text(encoding="utf-8")
        path = REPO_ROOT / "notebooks" / name
        if name.endswith(".ipynb") and path.is_file():
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            chosen = cells[cell:(to if to is not None and to >= cell else cell) + 1] if cell is not None else cells
            chosen = chosen or cells
            return "\n\n".join("".join(c["source"]) for c in chosen)
        raise HTTPException(status_code=404, detail="no such source")

    return app


def default_guardrails() -> Any:
    """Day 31's guardrails (`helpers.guardrails.default_guardrails()`)."""
    from .guardrails import default_guardrails as make

    return make()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve the course assistant on localhost.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8030)
    parser.add_argument("--max-new-tokens", type=int, default=int(os.environ.get("ASSISTANT_MAX_NEW_TOKENS", 64)))
    parser.add_argument("--guardrails", action="store_true", default=os.environ.get("ASSISTANT_GUARDRAILS") == "1",
                        help="check questions, chunks and answers with helpers.guardrails (Day 31)")
    args = parser.parse_args(argv)
    import logging

    import uvicorn

    from . import notebook

    notebook.quiet()
    # one line per turn on stderr (question and answer; redacted when the guardrails are on)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("helpers.assistant").setLevel(logging.INFO)
    guard = default_guardrails() if args.guardrails else None
    assistant = Assistant(guardrails=guard)  # build the index and load the models before serving
    _ = assistant.generator
    print(f"course assistant: {len(assistant.nodes)} chunks, generator {assistant.generator.name},"
          f" guardrails {'on' if guard else 'off'}; http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(assistant, args.max_new_tokens), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
