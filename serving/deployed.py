"""A stored BentoML model loaded for serving: its bundle, its identity, warmed up; ``/model``.

The service holds one :class:`Deployed` as the served model and optionally one as the
shadow; :mod:`serving.slots` swaps them whole. The identity comes from the stored model's
labels (``model_name``, ``version``, written by ``bento import``), falling back to the
bundle's ``metadata.json``. The ``alias`` label is not used: it was true when the model was
imported and goes stale when the registry moves ``champion`` (``serving.champion`` asks the
registry instead).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException, NotFound

from core.config import ServingConfig
from modelkit.bundle import Bundle, load_bundle
from modelkit.runtime import KERAS, select_runtime
from serving.batching import MicroBatcher
from serving.champion import ChampionStatus
from serving.encode import encode_requests
from serving.schemas import ModelId, ModelInfo, ModelRef, PredictRequest
from serving.store import bundle_path, get_stored_model


class ModelNotFoundError(LookupError):
    """The BentoML store has no model with that tag, or the tag is not a valid tag."""


@dataclass(eq=False)
class Deployed:
    """One loaded model: what it is, its bundle and (when served) its micro-batcher."""

    model: ModelId
    bundle: Bundle
    buckets: list[str]  # trajectory bucket names (Vocabulary.bucket_names)
    batcher: MicroBatcher | None = None  # set for the served model, None for the shadow
    in_use: int = 0  # requests between encoding and answer (counted by ModelSlots)


def get_stored(tag: str) -> bentoml.Model:
    """Return the stored BentoML model ``tag`` from this process's store (``BENTOML_HOME``).

    Raises:
        ModelNotFoundError: no such model, or ``tag`` is not a BentoML tag.
    """
    try:
        return get_stored_model(tag)
    except NotFound as exc:
        raise ModelNotFoundError(f"no model {tag!r} in the BentoML store") from exc
    except (ValueError, BentoMLException) as exc:  # malformed tag
        raise ModelNotFoundError(f"{tag!r} is not a BentoML model tag: {exc}") from exc


def identify(stored: bentoml.Model) -> ModelId:
    """The registry identity of a stored model (labels first, then the bundle's metadata)."""
    labels = stored.info.labels
    meta_file = bundle_path(stored) / "metadata.json"
    meta: dict[str, Any] = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return ModelId(
        name=labels.get("model_name") or str(meta.get("model_name") or stored.tag.name),
        version=labels.get("version") or str(meta.get("version", "")),
        bento_tag=str(stored.tag),
    )


def load_stored(
    stored: bentoml.Model, config: ServingConfig, model: ModelId | None = None
) -> Deployed:
    """Load a stored model's bundle and warm it up (seconds; call it off the event loop).

    Args:
        stored: the stored BentoML model.
        config: serving limits (the warm-up request goes through the real encode path).
        model: its identity, when already known (default :func:`identify`).

    Raises:
        FileNotFoundError: the stored model holds no complete bundle.
        Exception: whatever Keras raises for a model it cannot load or run.
    """
    bundle = load_bundle(bundle_path(stored))
    buckets = bundle.vocab.bucket_names(bundle.spec.n_buckets)
    warm_up(bundle, buckets, config)
    choose_runtime(bundle, config)
    return Deployed(model=model or identify(stored), bundle=bundle, buckets=buckets)


def load_deployed(tag: str, config: ServingConfig) -> Deployed:
    """:func:`get_stored` then :func:`load_stored`: the model ``tag``, loaded and warmed up.

    Raises:
        ModelNotFoundError: see :func:`get_stored`.
    """
    return load_stored(get_stored(tag), config)


def warm_up(bundle: Bundle, buckets: list[str], config: ServingConfig) -> None:
    """One request through the whole encode path, then every padded batch size."""
    category = buckets[0] if not buckets[0].startswith("<") else "warmup"
    request = PredictRequest(
        events=[{"item_id": "0", "category_id": category, "behavior": "view", "timestamp": 0}],
        cutoff=datetime(1970, 1, 2, tzinfo=UTC),
    )
    encoded = encode_requests([request], bundle, config, datetime.now(UTC))
    bundle.predict(encoded.arrays.inputs())
    bundle.warmup()


def choose_runtime(bundle: Bundle, config: ServingConfig) -> None:
    """Serve the fastest model variant that matches Keras (:func:`modelkit.runtime.select_runtime`);
    the measurements go into ``bundle.metadata["runtime"]`` (shown on ``/model``)."""
    if not config.runtime_candidates:
        bundle.metadata["runtime"] = {"runtime": KERAS, "by_batch": {}}
        return
    bundle.predictor, bundle.metadata["runtime"] = select_runtime(
        bundle.predictor, config.runtime_batches, config.runtime_candidates
    )


def describe(
    served: Deployed,
    model: ModelRef,
    status: ChampionStatus,
    shadow: Deployed | None,
    shadow_error: str | None,
) -> ModelInfo:
    """The ``GET /model`` answer: identity, champion check, shadow, metrics, feature contract."""
    meta = dict(served.bundle.metadata)
    spec = served.bundle.spec
    return ModelInfo(
        model=model,
        is_champion=status.is_champion,
        champion_version=status.champion_version,
        registry_error=status.registry_error,
        checked_at=status.checked_at,
        shadow=shadow.model if shadow is not None else None,
        shadow_error=shadow_error,
        runtime=(meta.get("runtime") or {}).get("runtime", KERAS),
        metrics={k: _finite(v) for k, v in (meta.get("metrics") or {}).items()},
        feature_spec_hash=spec.spec_hash,
        vocab_hash=spec.vocab_hash,
        feature_spec=spec.__dict__,
        data_fingerprint=meta.get("data_fingerprint") or meta.get("fingerprint") or {},
        metadata=meta,
    )


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None
