import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from headstart import _runtime
from headstart._runtime import tune_malloc, tuned_malloc

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning applies to glibc only")


@glibc_only
def test_malloc_tuning_applies_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("HEADSTART_NO_MALLOC_TUNING", raising=False)
    monkeypatch.setitem(_runtime._state, "process", False)
    assert tune_malloc() is True
    assert _runtime._state["process"] is True


def test_malloc_tuning_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADSTART_NO_MALLOC_TUNING", "1")
    assert tune_malloc() is False


def test_user_malloc_settings_are_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADSTART_NO_MALLOC_TUNING", raising=False)
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    assert tune_malloc() is False


AFTER_A_BLOCK = """
import numpy as np
from headstart._runtime import tuned_malloc
from tests.conftest import served_by_mmap
with tuned_malloc() as on:
    inside = served_by_mmap()
    with tuned_malloc() as nested:
        pass
    blocks = [np.ones(1 << 20) for _ in range(40)]  # 320 MB of 8 MB arrays, freed inside the block
    del blocks
print(on, nested, inside, served_by_mmap())
"""


@glibc_only
def test_tuned_malloc_applies_inside_the_block_and_gives_glibc_its_defaults_back() -> None:
    """In a fresh process (as a notebook's kernel): inside the block an 8 MB array comes from the heap, after it
    from fresh mmap'd pages again (glibc's default threshold, the heap trimmed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "HEADSTART_NO_MALLOC_TUNING"}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", AFTER_A_BLOCK], cwd=root, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "False", "True"]


def test_tuned_malloc_respects_the_opt_out_and_the_users_own_settings(
    untuned_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADSTART_NO_MALLOC_TUNING", "1")
    with tuned_malloc() as on:
        assert on is False
    monkeypatch.delenv("HEADSTART_NO_MALLOC_TUNING")
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    with tuned_malloc() as on:
        assert on is False
