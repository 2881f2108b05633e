"""Promotion on online evidence: a shadow challenger's realised scores against the champion's.

``interest promote VERSION --online`` reads what ``interest monitor performance`` saved
(:mod:`monitoring.online`): per-request scores of the shadow and of the served champion on
the same requests. The same comparison as the offline gate (:func:`training.gate.compare`:
paired bootstrap over users, margin, guards) decides; baselines are not served, so the
online gate faces the champion only, and says so in its reasons.
"""

from __future__ import annotations

import math

from core.config import ProjectConfig
from modelkit.registry import CHAMPION, model_aliases, registry_client, resolve_version
from monitoring.online import load_evidence
from training.decision import Candidate, PromotionDecision
from training.gate import GateRule, compare
from training.promotion import apply_decision

ONLINE_SPLIT = "online"  # both sides were scored on the same logged requests


def promote_online(config: ProjectConfig, version: str, command: str) -> PromotionDecision:
    """Gate ``version`` on its shadow evidence against the current champion; move the alias.

    Raises:
        FileNotFoundError: no online evidence for the version (names what to run).
        LookupError: the version does not exist.
        ValueError: the version is already the champion.
    """
    client = registry_client(config)
    name = config.registry.model_name
    number = str(resolve_version(client, name, version).version)
    champion = (model_aliases(client, name) or {}).get(CHAMPION)
    if champion == number:
        raise ValueError(f"model {name!r} version {number} is already the champion")
    meta, samples = load_evidence(config, number)
    rule = GateRule.from_config(config.registry)
    metric = rule.primary_metric
    mine, theirs = samples["challenger"], samples["champion"]
    challenger = Candidate(
        f"shadow v{number}", {metric: mine.mean(metric)}, ONLINE_SPLIT, number, mine
    )
    opponent = Candidate(
        f"served v{meta['served_version']}",
        {metric: theirs.mean(metric)},
        ONLINE_SPLIT,
        str(meta["served_version"]),
        theirs,
    )
    comp, reasons = compare(challenger, opponent, "champion", rule)
    passed = comp.passed
    if str(meta["served_version"]) != str(champion):
        passed = False
        reasons.append(
            f"the evidence faces v{meta['served_version']}, but v{champion} is the champion now: "
            "shadow the version next to the current champion and score it again"
        )
    reasons.append("online gate: faces the served champion only (baselines are not served)")
    decision = PromotionDecision(
        promote=passed,
        reasons=reasons,
        primary_metric=metric,
        challenger=comp.challenger,
        baseline=math.nan,
        champion=comp.opponent,
        margin=rule.margin,
        confidence=rule.confidence,
        n_users=mine.users_with(metric),
        n_resamples=rule.n_resamples,
        comparisons=[comp],
        recall_split=dict(comp.recall_split),
        labels={"challenger": challenger.label, "champion": opponent.label},
    )
    artifacts = f"{config.paths.resolved().artifact_root}/promotions"
    apply_decision(client, name, number, decision, artifact_location=artifacts, command=command)
    return decision
