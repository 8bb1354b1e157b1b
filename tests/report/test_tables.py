import json
from pathlib import Path

from headstart.report import markdown_table, verdict, write_comparison

ROWS = [
    {
        "strategy": "scratch",
        "accuracy": 0.74,
        "macro_f1": 0.651,
        "roc_auc": 0.776,
        "ci95": {"accuracy": [0.70, 0.78], "macro_f1": [0.60, 0.70], "roc_auc": [0.73, 0.82]},
        "seconds": 243.0,
        "trainable_params": 3373570,
        "run": "runs/x/scratch",
        "n_test": 393,
        "warnings": [],
    },
    {
        "strategy": "finetune",
        "accuracy": 0.868,
        "macro_f1": 0.84,
        "roc_auc": None,
        "ci95": {"accuracy": [0.835, 0.9], "macro_f1": [0.8, 0.88]},
        "seconds": 272.1,
        "trainable_params": 3373570,
        "run": "runs/x/finetune",
        "n_test": 393,
        "warnings": ["class 'defective' has only 4 test examples; its precision/recall are unreliable"],
    },
]


def test_markdown_table_shows_intervals() -> None:
    md = markdown_table(ROWS).splitlines()
    assert md[0].startswith("| strategy | accuracy [95% CI] | macro-F1 [95% CI] | ROC-AUC [95% CI] |")
    assert "| scratch | 0.740 [0.700, 0.780] | 0.651 [0.600, 0.700] | 0.776 [0.730, 0.820] | 243.0 |" in md[2]
    assert "| finetune | 0.868 [0.835, 0.900] | 0.840 [0.800, 0.880] | n/a | 272.1 | 3,373,570 |" in md[3]


def test_seed_means_show_std() -> None:
    row = dict(ROWS[0], accuracy_std=0.0123, ci95={})
    assert "| 0.740 ± 0.012 |" in markdown_table([row])


def test_verdict_reads_the_intervals() -> None:
    assert verdict(ROWS).startswith("transfer helps: finetune is +18.9 macro-F1 points over scratch")
    close = [dict(ROWS[0]), dict(ROWS[1], ci95={"macro_f1": [0.62, 0.9]})]
    assert verdict(close).startswith("transfer may help") and "CIs overlap" in verdict(close)
    worse = [dict(ROWS[0], macro_f1=0.9, ci95={}), ROWS[1]]
    assert verdict(worse).startswith("transfer does not help here: scratch is 6.0 macro-F1 points ahead")
    assert "add scratch" in verdict(ROWS[1:])


def test_write_comparison(tmp_path: Path) -> None:
    header = {"data": "builtin:elpv", "backbone": "efficientnet_lite0", "verdict": verdict(ROWS)}
    js, md = write_comparison(tmp_path, ROWS, header)
    saved = json.loads(js.read_text())
    assert saved["runs"][1]["strategy"] == "finetune" and saved["verdict"].startswith("transfer helps")
    text = md.read_text()
    assert "builtin:elpv with efficientnet_lite0" in text and "393 examples" in text
    assert "**transfer helps" in text and "warning: class 'defective' has only 4" in text
