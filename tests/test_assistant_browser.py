"""The served course assistant in a real headless browser (Day 30): Debian's Chromium driven by Selenium.

Starts `python -m helpers.webapp` (uvicorn, the real models, short answers) on a free port, waits for
/health, then: the page loads; a question streams an answer with a source link; an empty and a
10,000-character question get a clear message on the page; 20 concurrent requests all complete.
Chromium and its driver come from apt (`make system`); without them this test fails, it does not skip.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
READY_TIMEOUT_S = 240  # index + models load on a busy 2-core machine
MAX_NEW_TOKENS = 12  # served answers are short here: the test checks the plumbing, not the prose


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, payload: dict, timeout: float = 300) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture(scope="module")
def server():
    missing = [p for p in (CHROMIUM, DRIVER) if not (os.path.isfile(p) or shutil.which(p))]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make system` (Debian's chromium and chromium-driver)")
    port = free_port()
    env = dict(os.environ, ASSISTANT_MAX_NEW_TOKENS=str(MAX_NEW_TOKENS))
    proc = subprocess.Popen([sys.executable, "-m", "helpers.webapp", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{proc.stdout.read()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the server was not ready within {READY_TIMEOUT_S} s:\n{proc.stdout.read()[-3000:]}")
        time.sleep(1)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    yield driver
    driver.quit()


def ask(browser, base, question: str | None, typed: str | None = None):
    from selenium.webdriver.common.by import By

    browser.get(base + "/")
    box = browser.find_element(By.ID, "question")
    if typed is not None:
        box.send_keys(typed)
    if question is not None:  # long text: set it directly (typing 10,000 keys is slow)
        browser.execute_script("arguments[0].value = arguments[1];", box, question)
    browser.find_element(By.ID, "ask").click()
    return By


def test_page_loads(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    assert "Course assistant" in browser.title
    assert browser.find_element(By.ID, "question").is_displayed() and browser.find_element(By.ID, "ask").is_enabled()


def test_question_gets_streamed_answer_with_source_link(server, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    By = ask(browser, server, None, typed="What does similarity_top_k set in llama-index?")
    WebDriverWait(browser, 180).until(lambda d: d.find_element(By.ID, "answer").get_attribute("data-done") == "1")
    answer = browser.find_element(By.ID, "answer").text
    links = browser.find_elements(By.CSS_SELECTOR, "#sources a.source")
    assert answer.strip(), "the page shows no answer"
    assert links and links[0].get_attribute("href").startswith(server + "/source/"), "no source link on the page"
    assert not browser.find_element(By.ID, "error").text, browser.find_element(By.ID, "error").text
    with urllib.request.urlopen(links[0].get_attribute("href"), timeout=30) as r:
        assert r.status == 200 and r.read().strip(), "the source link does not open its source"


@pytest.mark.parametrize("question, words", [("", "empty"), ("why? " * 2000, "too long")])
def test_bad_question_gets_clear_message(server, browser, question, words):
    from selenium.webdriver.support.ui import WebDriverWait

    By = ask(browser, server, question)
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "error").text)
    message = browser.find_element(By.ID, "error").text
    assert words in message, f"expected a message about a {words} question, got {message!r}"
    assert not browser.find_element(By.ID, "answer").text, "a refused question should get no answer"


def test_twenty_concurrent_requests_complete(server):
    questions = [f"What is chunk overlap for? ({i})" if i % 2 else f"What is {i} * 7?" for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(lambda q: post(server + "/api/ask", {"question": q, "session_id": q}), questions))
    statuses = [status for status, _ in results]
    assert statuses == [200] * 20, f"not every request completed: {statuses}"
    assert all(body["text"].strip() for _, body in results), [body.get("text") for _, body in results]
    assert sum(bool(body["sources"]) for _, body in results) == 10, "every retrieval answer should carry sources"
