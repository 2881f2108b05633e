"""The Optuna search space, kept apart from the model builder.

``suggest(trial)`` turns a trial into a :class:`TrialPlan` (a :class:`ModelConfig` plus how
to initialise it), so the winning plan can be rebuilt later from its params alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import optuna

from modelkit.model_config import ModelConfig

Init = Literal["scratch", "pretrain", "warm_start"]


@dataclass(frozen=True)
class TrialPlan:
    """What one trial trains: an architecture and how its weights start."""

    model: ModelConfig
    # scratch: random init; pretrain: self-supervised next-event pre-training of the
    # encoder first; warm_start: encoder (and heads where shapes match) from the champion.
    init: Init = "scratch"

    def params(self) -> dict[str, Any]:
        """Flat params for MLflow: the model config plus ``init``."""
        return {**self.model.to_dict(), "init": self.init}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> TrialPlan:
        """Rebuild a plan from :meth:`params` (or an Optuna trial's ``params``)."""
        params = dict(params)
        init = params.pop("init", "scratch")
        return cls(model=ModelConfig.from_dict(params), init=init)


def suggest(
    trial: optuna.Trial,
    *,
    can_warm_start: bool = False,
    text_channels: tuple[str, ...] = (),
    fixed: Mapping[str, Any] | None = None,
) -> TrialPlan:
    """Sample a plan: cell, widths, pooling, branches, regularisation, init.

    Args:
        trial: the Optuna trial.
        can_warm_start: whether a champion exists to warm-start from.
        text_channels: the text inputs the data carries (``text_tokens``, ``attr_tokens``,
            ``content`` for category profiles;
            see ``modelkit.text_features``); only then are the text options searched, so
            studies on logs without text sample exactly as before.
        fixed: ``train.fixed_params``: ModelConfig fields the study does not search, set
            through one-choice categoricals (no sampler draw: the other suggestions stay
            as without them; the values land in the trial's params for the refit).

    Raises:
        ValueError: on a fixed name that is not a ModelConfig field or that the study
            searches.

    Returns:
        The plan; its :meth:`TrialPlan.params` equal the trial's params.
    """
    inits: list[str] = ["scratch", "pretrain"] + (["warm_start"] if can_warm_start else [])
    # One recurrent layer and small widths: on logs of a few thousand samples the history
    # prior carries most of the signal and deeper encoders only cost time. Rates above
    # ~3e-3 pulled the model off the heuristic prior within an epoch on Taobao.
    model = ModelConfig(
        cell=trial.suggest_categorical("cell", ["lstm", "gru"]),
        units=trial.suggest_categorical("units", [32, 64]),
        cat_embed_dim=trial.suggest_categorical("cat_embed_dim", [16, 32]),
        dropout=trial.suggest_float("dropout", 0.0, 0.3),
        pooling=trial.suggest_categorical(
            "pooling", ["last", "mean", "attention", "target_attention"]
        ),
        use_time_features=trial.suggest_categorical("use_time_features", [True, False]),
        use_period_branch=trial.suggest_categorical("use_period_branch", [True, False]),
        # mixture: repeat/explore switch (modelkit.mixture) for the categories the
        # history cannot name; prior: learned logits gated over the frequency prior.
        next_cats_head=trial.suggest_categorical("next_cats_head", ["prior", "mixture"]),
        learning_rate=trial.suggest_float("learning_rate", 3e-4, 3e-3, log=True),
        **suggest_text(trial, text_channels),
    )
    init = trial.suggest_categorical("init", inits)
    if fixed:
        known = {f.name for f in fields(ModelConfig)}
        searched = set(trial.params)
        for name in sorted(fixed):
            if name not in known or name in searched:
                why = "is searched by the study" if name in known else "is not a model setting"
                raise ValueError(f"train.fixed_params.{name} {why}; fix only unsearched fields")
        chosen = {name: trial.suggest_categorical(name, [fixed[name]]) for name in sorted(fixed)}
        model = replace(model, **chosen)
    return TrialPlan(model=model, init=init)


def suggest_text(trial: optuna.Trial, text_channels: tuple[str, ...]) -> dict[str, bool]:
    """The text switches for the channels present (none: no suggestion at all)."""
    flags = {"text_tokens": "use_text", "attr_tokens": "use_item_attrs", "content": "use_content"}
    return {
        flags[name]: trial.suggest_categorical(flags[name], [False, True])
        for name in text_channels
        if name in flags
    }


def plan_from_trial(trial: optuna.trial.FrozenTrial) -> TrialPlan:
    """Rebuild the plan of a finished trial (fixed params keep their defaults)."""
    return TrialPlan.from_params(trial.params)
