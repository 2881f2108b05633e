"""Online evidence: a shadow challenger against the served model on the same requests.

The service logs a shadow model's predictions next to the served model's, with the same
``request_id`` (CONTRACT.md). Once the horizons are over, both are labelled with the same
training label code and scored per sample (:func:`evaluation.samples.score_samples`), and a
paired bootstrap over users (:func:`evaluation.paired.paired_bootstrap`, the gate's own)
bounds the relative recall gain of the shadow. The per-sample scores are saved as evidence,
so ``interest promote VERSION --online`` can run the promotion gate on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import ProjectConfig, RegistryConfig
from evaluation.paired import Interval, paired_bootstrap
from evaluation.samples import SampleScores, align, read_samples, write_samples
from monitoring.performance import SHADOW


@dataclass(frozen=True)
class OnlineComparison:
    """A shadow version against a served version on the requests both answered."""

    shadow_version: str
    served_version: str
    metric: str
    interval: Interval
    shadow: SampleScores
    served: SampleScores

    def line(self) -> str:
        """One human line with the interval."""
        iv = self.interval
        return (
            f"shadow v{self.shadow_version} vs served v{self.served_version}: {self.metric} "
            f"{iv.point:+.2%}, {iv.confidence:.0%} CI [{iv.lower:+.1%}, {iv.upper:+.1%}] on "
            f"{iv.n_users} users / {iv.n_samples} requests ({iv.mean_a:.4f} vs {iv.mean_b:.4f})"
        )


def _dedupe(samples: SampleScores) -> SampleScores:
    """One sample per (user, cutoff): a repeated request counts once (the first)."""
    keys = np.array([f"{u}|{c}" for u, c in zip(samples.user_id, samples.cutoff, strict=True)])
    _, first = np.unique(keys, return_index=True)
    return samples.select(np.sort(first))


def compare_shadows(
    samples: dict[str, SampleScores],
    rule: RegistryConfig,
    metric: str,
    shadowing: dict[str, set[str]] | None = None,
) -> list[OnlineComparison]:
    """Every shadow version against the served version(s) that answered the same requests.

    Args:
        samples: per-sample scores keyed by version label (``"3"`` served, ``"4-shadow"``).
        rule: the gate's confidence, resamples and seed (``registry`` config).
        metric: the primary metric, e.g. ``recall_at_10``.
        shadowing: shadow label -> served versions of its requests
            (:attr:`monitoring.performance.PerformanceResult.shadowing`); ``None``: pair with
            every served version on shared (user, cutoff) samples.
    """
    out = []
    for label, shadow in sorted(samples.items()):
        if not label.endswith(SHADOW):
            continue
        for served_label, served in sorted(samples.items()):
            if served_label.endswith(SHADOW):
                continue
            if shadowing is not None and served_label not in shadowing.get(label, set()):
                continue
            mine, theirs = align(_dedupe(shadow), _dedupe(served))
            if len(mine) == 0 or metric not in mine.values:
                continue
            interval = paired_bootstrap(
                mine.values[metric],
                theirs.values[metric],
                mine.user_id,
                n_resamples=rule.bootstrap_resamples,
                confidence=rule.confidence,
                seed=rule.bootstrap_seed,
            )
            out.append(
                OnlineComparison(
                    label.removesuffix(SHADOW), served_label, metric, interval, mine, theirs
                )
            )
    return out


def evidence_dir(config: ProjectConfig) -> Path:
    """``<state>/monitoring/online``: the latest evidence per shadow version."""
    return config.paths.resolved().state_dir / "monitoring" / "online"


def save_evidence(config: ProjectConfig, comparison: OnlineComparison) -> Path:
    """Write the per-sample scores of both sides and the interval (latest wins)."""
    folder = evidence_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"v{comparison.shadow_version}"
    write_samples(
        stem.with_suffix(".parquet"),
        {"challenger": comparison.shadow, "champion": comparison.served},
    )
    meta = {
        "shadow_version": comparison.shadow_version,
        "served_version": comparison.served_version,
        "metric": comparison.metric,
        "interval": comparison.interval.to_dict(),
    }
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return stem.with_suffix(".json")


def load_evidence(config: ProjectConfig, version: str) -> tuple[dict, dict[str, SampleScores]]:
    """The saved evidence of a shadow version: its metadata and both sides' scores.

    Raises:
        FileNotFoundError: no online evidence for that version (names the command to run).
    """
    stem = evidence_dir(config) / f"v{version}"
    if not stem.with_suffix(".json").is_file():
        raise FileNotFoundError(
            f"no online evidence for v{version} in {stem.parent}: shadow it in the service "
            "(POST /admin/shadow) and run `interest monitor performance --data LOG` once its "
            "horizons are over"
        )
    meta = json.loads(stem.with_suffix(".json").read_text())
    return meta, read_samples(stem.with_suffix(".parquet"))
