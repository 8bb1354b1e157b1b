"""One error for every unknown name: the closest choice first, then all of them."""

from headstart.errors import HeadstartError
from headstart.registry import closest, unknown_choice

STRATEGIES = ["linear-probe", "finetune", "partial", "progressive", "plateau", "lp-ft", "scratch"]


def test_closest_finds_typos_and_not_strangers() -> None:
    assert closest("fintune", STRATEGIES) == "finetune"
    assert closest("linearprobe", STRATEGIES) == "linear-probe"
    assert closest("efnet-lite0", ["mobilenet_v2", "efficientnet_lite0", "efficientnet_lite1"]) == "efficientnet_lite0"
    assert closest("yolo", STRATEGIES) is None
    assert closest("extra", ["data", "model", "train", "eval"]) is None  # difflib ratio 0.6: below the cutoff


def test_unknown_choice_names_the_value_the_suggestion_and_every_choice() -> None:
    err = unknown_choice("strategy", "fintune", STRATEGIES)
    assert isinstance(err, HeadstartError)
    assert str(err) == (
        "unknown strategy 'fintune'; did you mean finetune? "
        "known: linear-probe, finetune, partial, progressive, plateau, lp-ft, scratch"
    )
    assert str(unknown_choice("backbone", "resnet9000", ["a", "b"], "or timm:<model_name>")) == (
        "unknown backbone 'resnet9000'; known: a, b, or timm:<model_name>"
    )
