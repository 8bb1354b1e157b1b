import pytest

from headstart.engine import warmup_cosine


def test_warmup_then_cosine() -> None:
    lrs = [warmup_cosine(s, 100, 10) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:10], strict=False))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(0.01, abs=0.01)


def test_no_warmup() -> None:
    assert warmup_cosine(0, 50, 0) == pytest.approx(1.0)
    assert warmup_cosine(50, 50, 0) == pytest.approx(0.01)
