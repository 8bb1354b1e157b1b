from headstart.strategies import PlateauTrigger, next_frozen, unfreeze_steps


def test_default_schedule_spreads_over_the_first_half() -> None:
    steps = unfreeze_steps(8, steps_per_epoch=10, epochs=3, every=None)
    assert len(steps) == 8 and steps == sorted(steps) and steps[-1] == 15
    assert steps[0] > 0


def test_every_e_epochs() -> None:
    assert unfreeze_steps(3, steps_per_epoch=4, epochs=10, every=2.0) == [8, 16, 24]
    assert unfreeze_steps(2, steps_per_epoch=10, epochs=3, every=0.5) == [5, 10]


def test_plateau_trigger_on_a_synthetic_metric_sequence() -> None:
    t = PlateauTrigger(patience=2)
    fired = [t.update(v) for v in [0.50, 0.60, 0.60, 0.58, 0.61, 0.61, 0.62, 0.60, 0.60, 0.60, 0.60]]
    assert [i for i, f in enumerate(fired) if f] == [3, 8, 10]
    t1 = PlateauTrigger(patience=1)
    assert [t1.update(v) for v in [0.5, 0.4, 0.6, 0.6]] == [False, True, False, True]


def test_plateau_state_round_trip() -> None:
    t = PlateauTrigger(patience=3)
    for v in (0.5, 0.4):
        t.update(v)
    u = PlateauTrigger(patience=3)
    u.load_state_dict(t.state_dict())
    assert [u.update(v) for v in (0.4, 0.4)] == [t.update(v) for v in (0.4, 0.4)]


def test_next_frozen_is_closest_to_the_head() -> None:
    groups = ["stem", "block.0", "block.1", "head"]
    assert next_frozen(groups, {"head"}) == "block.1"
    assert next_frozen(groups, {"head", "block.1", "block.0"}) == "stem"
    assert next_frozen(groups, set(groups)) is None
