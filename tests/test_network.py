"""The suite runs with the network blocked; loopback stays open; the hub decision is instant,
and the probe goes through a proxy when one is configured."""
from __future__ import annotations

import http.server
import socket
import threading
import time

import pytest

from helpers import network


@pytest.fixture(autouse=True)
def _deliberate_attempts_are_not_logged(monkeypatch):
    """These tests try the network on purpose; only unexpected attempts belong in the suite's log."""
    monkeypatch.delenv(network.LOG_ENV, raising=False)


def test_non_loopback_connection_is_refused():
    with pytest.raises(network.NetworkBlockedError):
        socket.create_connection(("huggingface.co", 443), timeout=1)
    with pytest.raises(network.NetworkBlockedError):
        socket.create_connection(("10.1.2.3", 80), timeout=1)


def test_loopback_still_works():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    threading.Thread(target=lambda: server.accept()[0].sendall(b"ok"), daemon=True).start()
    with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
        assert conn.recv(2) == b"ok"
    server.close()


def test_hub_decision_is_offline_and_fast(monkeypatch):
    network.hub_reachable.cache_clear()
    start = time.perf_counter()
    assert network.hub_reachable() is False
    assert time.perf_counter() - start < 0.1, "the hub decision must not wait on a probe"
    import huggingface_hub.constants as c

    assert c.HF_HUB_OFFLINE, "offline mode must reach an already imported huggingface_hub"


def test_failed_probe_sets_offline_mode(monkeypatch):
    """Without HF_HUB_OFFLINE, an unreachable hub is decided by one short probe, then offline."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv(network.BLOCK_ENV, raising=False)
    network.hub_reachable.cache_clear()
    start = time.perf_counter()
    try:
        assert network.hub_reachable() is False  # the blocked socket refuses, as a dead DNS would
    finally:
        network.hub_reachable.cache_clear()
    assert time.perf_counter() - start < network.PROBE_TIMEOUT_S + 0.5
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with 200 and remembers the request line (a hub or a proxy)."""

    seen: list[str] = []

    def do_HEAD(self) -> None:  # noqa: N802
        type(self).seen.append(self.requestline)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _serve() -> tuple[http.server.HTTPServer, str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def test_probe_answers_yes_when_the_hub_answers(monkeypatch):
    server, url = _serve()
    try:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert network.probe(url) is True
        assert network.probe("http://127.0.0.1:9") is False  # nothing listens there
    finally:
        server.shutdown()


def test_probe_goes_through_the_proxy(monkeypatch):
    """A learner behind a proxy: the probe must ask the proxy, not connect directly."""
    proxy, proxy_url = _serve()
    _Recorder.seen.clear()
    try:
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.setenv("http_proxy", proxy_url)
        assert network.probe("http://hub.example.invalid") is True, "the proxy answered for the hub"
        assert _Recorder.seen and "hub.example.invalid" in _Recorder.seen[0], _Recorder.seen
    finally:
        proxy.shutdown()


def test_hub_url_follows_hf_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example/")
    assert network.hub_url() == "https://mirror.example"
