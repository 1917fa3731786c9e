"""The README's first command: `python -m realtime_sync demo` runs a real local session."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "realtime_sync", "demo", *args],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        check=False,
    )


def test_demo_without_a_key_uses_the_local_server() -> None:
    result = run_demo("--prompt", "ping from the test")
    assert result.returncode == 0, result.stderr
    assert "built-in local server" in result.stdout
    assert "session sess_" in result.stdout
    assert "you: ping from the test" in result.stdout
    assert "[completed;" in result.stdout
    assert result.stderr == ""
