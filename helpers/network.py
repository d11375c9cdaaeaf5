"""Decide fast whether the Hugging Face Hub is reachable, and optionally forbid the network.

An unreachable hub must never cost a learner a minute of retries: `hub_reachable()` answers
from the environment or from one short HTTPS request (through `HTTPS_PROXY`/`HTTP_PROXY` when
set, to `HF_ENDPOINT` when set), and when the answer is no it sets `HF_HUB_OFFLINE=1` so that
huggingface_hub and transformers fail (or use local files) at once.

The suite's network guard (`LLMC_BLOCK_NETWORK=1`) patches Python's `socket.socket.connect` and
`socket.getaddrinfo` in every process that imports `helpers` (the pytest process, and notebook
kernels, whose setup cell imports it): connections and name lookups to anything but loopback
raise `NetworkBlockedError` and are logged. It does not cover code that opens sockets below
Python (a C library with its own resolver) or child processes that never import `helpers`;
`tests/test_network.py` shows what it refuses.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import threading
import urllib.error
import urllib.request
from functools import lru_cache

HUB_URL = "https://huggingface.co"
PROBE_TIMEOUT_S = 1.5
_TRUE = {"1", "true", "yes", "on"}

# Env var set by the test suite (and usable by anyone): refuse every non-loopback connection.
BLOCK_ENV = "LLMC_BLOCK_NETWORK"
# File to which blocked attempts are appended, so the suite can prove none happened.
LOG_ENV = "LLMC_NETWORK_LOG"


class NetworkBlockedError(ConnectionError):
    """Raised when code tries to reach a non-loopback address while the network is blocked."""


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def set_offline() -> None:
    """Put huggingface_hub (and so transformers) in offline mode, also if already imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:  # the constant is read at import time; keep an imported hub in step
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        pass


@lru_cache(maxsize=1)
def hub_reachable() -> bool:
    """True when the Hub answers within PROBE_TIMEOUT_S; False (and offline mode set) otherwise.

    `HF_HUB_OFFLINE=1` or `LLMC_BLOCK_NETWORK=1` answer False without any probe.
    """
    if _env_true("HF_HUB_OFFLINE") or _env_true(BLOCK_ENV):
        set_offline()
        return False
    if probe(hub_url()):
        return True
    set_offline()
    return False


def hub_url() -> str:
    """The Hub's address: `HF_ENDPOINT` (a mirror) when set, else huggingface.co."""
    return os.environ.get("HF_ENDPOINT", HUB_URL).rstrip("/")


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when `url` answers any HTTP response within `timeout` seconds (name lookup included).

    urllib honours HTTPS_PROXY/HTTP_PROXY/NO_PROXY; the request runs in a daemon thread so a slow
    DNS lookup cannot stretch the wait past the timeout."""
    answered: list[bool] = []

    def ask() -> None:
        request = urllib.request.Request(url + "/api/models?limit=1", method="HEAD")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler())  # reads the proxy variables now
        try:
            with opener.open(request, timeout=timeout):
                answered.append(True)
        except urllib.error.HTTPError:  # an HTTP error status is still an answer from the Hub
            answered.append(True)
        except (OSError, ValueError):
            answered.append(False)

    worker = threading.Thread(target=ask, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return bool(answered and answered[0])


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _record(target: object) -> None:
    log = os.environ.get(LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()} {target!r}\n")


_original_connect = socket.socket.connect
_original_getaddrinfo = socket.getaddrinfo


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0] if isinstance(address, tuple) else address
        if not _is_loopback(host):
            _record(address)
            raise NetworkBlockedError(f"network blocked by {BLOCK_ENV}=1: refused connection to {address!r}")
    return _original_connect(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    if not _is_loopback(host):
        _record(host)
        raise NetworkBlockedError(f"network blocked by {BLOCK_ENV}=1: refused lookup of {host!r}")
    return _original_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


def block_network() -> None:
    """Refuse every non-loopback connection and DNS lookup in this process (idempotent)."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    set_offline()


def offline_env(log_path: str | None = None) -> dict[str, str]:
    """Environment variables for an offline, network-blocked run (the test suite and
    `scripts/nb.py run` use the same), so committed outputs match what CI sees."""
    env = {
        BLOCK_ENV: "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TRANSFORMERS_VERBOSITY": "error",
        "DO_NOT_TRACK": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "PYTHONHASHSEED": "0",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    if log_path:
        env[LOG_ENV] = log_path
    return env
