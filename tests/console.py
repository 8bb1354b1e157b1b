"""Run the installed ``headstart`` console script as a user does, and check it never shows a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["HEADSTART", "headstart", "refused"]

HEADSTART = str(Path(sys.executable).parent / "headstart")


def headstart(*args: str, cwd: Path | None = None, timeout: float = 900, **env: str) -> subprocess.CompletedProcess:
    """``headstart ARGS`` in a subprocess (offline, the test's feature cache); stdout and stderr as text.

    Whatever the exit code, the output must not hold a Python traceback: user errors are messages.
    """
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **env}
    result = subprocess.run(
        [HEADSTART, *args], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=timeout, check=False
    )
    assert "Traceback" not in result.stdout + result.stderr, f"headstart {' '.join(args)}:\n{result.stderr}"
    return result


def refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Assert a clean refusal (exit 2, ``error:`` on stderr, every fragment in the message); return the message."""
    message = " ".join(result.stderr.split())  # rich wraps long lines
    assert result.returncode == 2, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    assert "error:" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message
