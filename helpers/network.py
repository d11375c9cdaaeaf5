"""Decide fast whether the Hugging Face Hub is reachable, and optionally forbid the network.

An unreachable hub must never cost a learner a minute of retries: `hub_reachable()` answers
from the environment or from one short TCP probe, and when the answer is no it sets
`HF_HUB_OFFLINE=1` so that huggingface_hub and transformers fail (or use local files) at once.
"""
from __future__ import annotations

import ipaddress
import os
import socket
from functools import lru_cache

HUB_HOST = "huggingface.co"
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
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=PROBE_TIMEOUT_S):
            return True
    except OSError:
        set_offline()
        return False


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


def unblock_network() -> None:
    """Undo `block_network()`."""
    socket.socket.connect = _original_connect  # type: ignore[method-assign]
    socket.getaddrinfo = _original_getaddrinfo  # type: ignore[assignment]


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
