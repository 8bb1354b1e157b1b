import platform

import pytest

from headstart._runtime import tune_malloc


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc tuning applies to glibc only")
def test_malloc_tuning_applies_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in __import__("os").environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("HEADSTART_NO_MALLOC_TUNING", raising=False)
    assert tune_malloc() is True


def test_malloc_tuning_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADSTART_NO_MALLOC_TUNING", "1")
    assert tune_malloc() is False


def test_user_malloc_settings_are_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEADSTART_NO_MALLOC_TUNING", raising=False)
    monkeypatch.setenv("MALLOC_ARENA_MAX_", "2")
    assert tune_malloc() is False
