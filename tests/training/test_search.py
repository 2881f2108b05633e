"""The search space: fixed model settings from the config (train.fixed_params)."""

from __future__ import annotations

import optuna
import pytest

from training.search import plan_from_trial, suggest


def _study() -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))


def test_fixed_params_reach_the_plan_and_the_refit_without_moving_other_draws():
    plain, fixed = _study(), _study()
    for _ in range(3):
        a = suggest(plain.ask())
        trial = fixed.ask()
        b = suggest(trial, fixed={"next_cats_gate": 0.25, "popularity_from": "latest"})
        assert b.model.next_cats_gate == 0.25 and b.model.popularity_from == "latest"
        # The searched settings are the ones the same sampler draws without fixed params.
        searched = {
            k: v for k, v in b.params().items() if k not in ("next_cats_gate", "popularity_from")
        }
        assert searched == {k: v for k, v in a.params().items() if k in searched}
        fixed.tell(trial, 0.5)
    rebuilt = plan_from_trial(fixed.trials[-1])
    assert rebuilt.model.next_cats_gate == 0.25 and rebuilt.model.popularity_from == "latest"


@pytest.mark.parametrize(("name", "why"), [("cell", "is searched"), ("colour", "is not a model")])
def test_fixed_params_reject_searched_and_unknown_names(name, why):
    with pytest.raises(ValueError, match=f"train.fixed_params.{name} {why}"):
        suggest(_study().ask(), fixed={name: "gru"})
