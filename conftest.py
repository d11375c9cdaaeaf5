"""Test-suite settings shared by the unit tests and nbval: offline, network blocked, and a
log of every refused connection so the session fails if anything tried to reach out."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from helpers.network import block_network, offline_env

_LOG = Path(tempfile.mkdtemp(prefix="llmc-net-")) / "attempts.log"
# Set before any kernel starts: nbval's kernels inherit this environment.
os.environ.update(offline_env(str(_LOG)))
block_network()


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    """Fail the run if any process of the suite attempted a non-loopback connection."""
    if _LOG.is_file() and _LOG.read_text().strip():
        print("\nNETWORK ATTEMPTS (refused) during the test run:\n" + _LOG.read_text())
        session.exitstatus = 1
