"""``advise``: each documented rule, in order, on constructed facts; and the facts of real data."""

from __future__ import annotations

import pytest

from headstart.config import RunConfig
from headstart.runner import prepare_data
from headstart.transferability.advise import Facts, advise, gather_facts
from headstart.transferability.features import parse_candidates
from headstart.transferability.rank import RankRow, rank_backbones


def row(name: str, logme: float, probe: float = 0.8, pretrained: bool = True) -> RankRow:
    return RankRow(name, pretrained, 8, logme, 1.0, None, None, None, probe, probe, 1.0, False)


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "modality": "image",
        "num_classes": 2,
        "min_train_per_class": 100,
        "median_train_per_class": 200.0,
        "n_val": 300,
        "ranked": [row("b", 0.5), row("a", 0.2)],
    }
    return Facts(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "strategy", "then", "reason"),
    [
        ({"ranked": [row("random:b", 0.1, 0.85, False), row("b", 0.5)]}, "scratch", None, "no better than random"),
        ({"min_train_per_class": 3}, "linear-probe", None, "only 3 training example(s)"),
        ({"ranked": [row("b", 0.5, probe=0.99)]}, "linear-probe", None, "already separate the classes"),
        ({"ranked": [row("b", 0.5, probe=0.99)], "n_val": 12}, "progressive", None, "progressive unfreezing"),
        ({"median_train_per_class": 12.0}, "linear-probe", "lp-ft", "few examples per class (12)"),
        ({"modality": "text"}, "lp-ft", None, "text encoders"),
        ({"reference_pad": 1.8}, "finetune", None, "proxy A-distance 1.80"),
        ({"source_confidence": 0.2}, "finetune", None, "mean confidence 0.20"),
        ({"source_confidence": 0.2, "median_train_per_class": 30.0}, "progressive", None, "unsure on these images"),
        ({"source_confidence": 0.6}, "progressive", None, "progressive unfreezing"),
        ({"reference_pad": 0.4, "source_confidence": 0.1}, "progressive", None, "progressive unfreezing"),
        ({"target_pad": 1.6}, "adabn", "finetune", "--target looks unlike the training data (proxy A-distance 1.60"),
        ({"target_pad": 1.6, "median_train_per_class": 12.0}, "linear-probe", "lp-ft", "few examples per class"),
        ({"target_pad": 0.6}, "progressive", None, "progressive unfreezing"),
        ({"target_pad": 1.6, "modality": "text"}, "lp-ft", None, "text encoders"),  # no text evidence in the bench
    ],
)
def test_rules_in_order(kw: dict, strategy: str, then: str | None, reason: str) -> None:  # type: ignore[type-arg]
    advice = advise(facts(**kw))
    assert (advice.strategy, advice.then) == (strategy, then)
    assert reason in advice.reasons[0]
    assert advice.backbone == "b"


def test_backbone_is_the_best_pretrained_probe_then_logme_and_ties_are_mentioned() -> None:
    ranked = [
        row("random:x", 0.9, 0.95, pretrained=False),
        row("b", 0.5, 0.8),
        row("a", 0.4, 0.96),
        row("c", 0.9, 0.955),
    ]
    advice = advise(facts(ranked=ranked))
    assert advice.backbone == "a" and advice.strategy != "scratch"  # the control's 0.95 is below a's 0.96
    assert "best linear-probe accuracy on validation (0.960, LogME 0.400) of 3 pretrained" in advice.reasons[1]
    assert any(r.startswith("c probe(s) within 1%") for r in advice.reasons)
    assert advise(facts(ranked=[row("b", 0.5, 0.9), row("a", 0.4, 0.9)])).backbone == "b"  # tie: LogME
    assert advice.facts["min_train_per_class"] == 100 and "ranked" not in advice.facts


def test_no_pretrained_candidate_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one pretrained candidate"):
        advise(facts(ranked=[row("random:x", 0.1, pretrained=False)]))


def test_facts_of_real_cells(tiny_config: RunConfig) -> None:
    data = prepare_data(tiny_config)
    ranked = rank_backbones(tiny_config, parse_candidates("efficientnet_lite0", "image"), data)
    f = gather_facts(tiny_config, ranked, data, reference=None)
    train_counts = sorted(int((data[0].targets[data[1]["train"]] == k).sum()) for k in range(2))
    assert f.min_train_per_class == train_counts[0] and f.num_classes == 2
    assert f.source_confidence == ranked[0].source_confidence and f.reference_pad is None
    advice = advise(f)
    # 10 training cells per class: the few-examples rule applies
    assert (advice.strategy, advice.then) == ("linear-probe", "lp-ft")


def test_reference_sample_gives_a_proxy_a_distance(tiny_config: RunConfig) -> None:
    data = prepare_data(tiny_config)
    ranked = rank_backbones(tiny_config, parse_candidates("efficientnet_lite0", "image"), data)
    same = gather_facts(tiny_config, ranked, data, reference=data[0])
    assert same.reference_pad is not None and same.reference_pad < 0.5  # the target is its own reference
    assert "proxy A-distance" not in " ".join(advise(same).reasons)


def task_row(name: str, logme: float, probe: float, task: str, pretrained: bool = True) -> RankRow:
    return RankRow(name, pretrained, 8, logme, None, None, None, None, probe, probe, 1.0, False, task=task)


@pytest.mark.parametrize(
    ("task", "kw", "strategy", "reason"),
    [
        ("regression", {"min_train_per_class": 3}, "linear-probe", "3 training example(s) in the sparsest range"),
        ("regression", {"ranked": [task_row("b", 0.5, 0.98, "regression")]}, "linear-probe", "predict the target"),
        ("regression", {"median_train_per_class": 12.0}, "linear-probe", "few examples per value range (12)"),
        ("regression", {"source_confidence": 0.2}, "lp-ft", "regression heads fine-tune best"),  # bench_tasks
        ("multilabel", {"min_train_per_class": 2}, "linear-probe", "2 training example(s) with the rarest label"),
        ("multilabel", {"ranked": [task_row("b", 0.5, 0.99, "multilabel")]}, "linear-probe", "probe mAP 0.990"),
        ("multilabel", {"median_train_per_class": 8.0}, "linear-probe", "few examples per label (8)"),
        ("multilabel", {}, "lp-ft", "multi-label heads fine-tune best from the probe's head"),
    ],
)
def test_rules_read_the_tasks_probe_score_and_example_counts(
    task: str,
    kw: dict,
    strategy: str,
    reason: str,  # type: ignore[type-arg]
) -> None:
    ranked = [task_row("b", 0.5, 0.6, task), task_row("a", 0.2, 0.4, task)]
    advice = advise(facts(**{"ranked": ranked, "task": task, **kw}))
    assert advice.strategy == strategy and reason in advice.reasons[0]
    assert advice.backbone == "b" and advice.facts["task"] == task


def test_regression_backbone_is_the_best_probe_r2_and_a_better_random_control_means_scratch() -> None:
    ranked = [task_row("b", 0.5, 0.30, "regression"), task_row("a", 0.4, 0.45, "regression")]
    advice = advise(facts(ranked=ranked, task="regression"))
    assert advice.backbone == "a" and "best linear-probe R2 on validation (0.450, LogME 0.400)" in advice.reasons[1]
    assert advice.facts["counted_per"] == "value range"
    control = task_row("random:a", 0.1, 0.5, "regression", pretrained=False)
    assert advise(facts(ranked=[*ranked, control], task="regression")).strategy == "scratch"


def test_target_data_gives_its_proxy_a_distance_through_the_console(elpv_folder, tmp_path, elpv) -> None:  # type: ignore[no-untyped-def]
    """``headstart advise DATA --target OTHER`` measures the distance and records it with the facts."""
    import json

    from tests.conftest import write_class_folder
    from tests.console import headstart

    other = write_class_folder(tmp_path / "other", elpv, per_class=8, seed=5)
    result = headstart(
        "advise", str(elpv_folder), "--backbones", "efficientnet_lite0", "--target", str(other), "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    advice = json.loads(result.stdout)
    assert isinstance(advice["facts"]["target_pad"], float) and 0 <= advice["facts"]["target_pad"] <= 2
    assert advice["strategy"] == "linear-probe"  # 10 training cells per class: the few-examples rule comes first


def test_large_text_encoder_gets_lora_where_the_bench_measured_it_close_to_finetuning() -> None:
    advice = advise(facts(modality="text", ranked=[row("mpnet", 0.5), row("minilm", 0.4, probe=0.7)]))
    assert (advice.backbone, advice.strategy, advice.then) == ("mpnet", "lora", "lp-ft")
    assert "LoRA (rank 4) reached 0.787" in advice.reasons[0]
    minilm = advise(facts(modality="text", ranked=[row("minilm", 0.5)]))
    assert minilm.strategy == "lp-ft"  # LoRA was 2.5 points under full fine-tuning on minilm
