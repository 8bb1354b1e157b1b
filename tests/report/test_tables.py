import json
from pathlib import Path

from headstart.report import markdown_table, write_comparison

ROWS = [
    {
        "strategy": "linear-probe",
        "accuracy": 0.8401,
        "macro_f1": 0.795,
        "roc_auc": None,
        "seconds": 18.04,
        "trainable_params": 2562,
        "run": "runs/x/linear-probe",
        "n_test": 393,
    },
    {
        "strategy": "finetune",
        "accuracy": 0.868,
        "macro_f1": 0.84,
        "roc_auc": 0.94,
        "seconds": 272.1,
        "trainable_params": 3373570,
        "run": "runs/x/finetune",
        "n_test": 393,
    },
]


def test_markdown_table_formats_numbers() -> None:
    md = markdown_table(ROWS).splitlines()
    assert md[0].startswith("| strategy | accuracy | macro-F1 | ROC-AUC |")
    assert "| linear-probe | 0.840 | 0.795 | n/a | 18.0 | 2,562 |" in md[2]
    assert "| finetune | 0.868 | 0.840 | 0.940 | 272.1 | 3,373,570 |" in md[3]


def test_write_comparison(tmp_path: Path) -> None:
    js, md = write_comparison(tmp_path, ROWS, {"data": "builtin:elpv", "backbone": "efficientnet_lite0"})
    assert json.loads(js.read_text())["runs"][1]["strategy"] == "finetune"
    text = md.read_text()
    assert "builtin:elpv with efficientnet_lite0" in text and "393 images" in text
