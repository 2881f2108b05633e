"""The model bundle: what training saves and serving, monitoring and training load.

Layout of a bundle folder (see CONTRACT.md)::

    model.keras  vocab.json  feature_config.json  feature_spec.json  metadata.json
    reference.parquet (optional)

Loading uses ``keras.saving.load_model(..., safe_mode=True, compile=False)``; the custom
layers it needs are registered by :mod:`modelkit.layers`, so ``training`` is never imported.
Inference runs through one ``tf.function`` with a fixed input signature, never
``model.predict`` (about 25x slower at batch 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

import modelkit.layers  # noqa: F401  (registers the custom layers for deserialization)
import modelkit.text_layers  # noqa: F401  (likewise, the text layer)
from core.arrays import FeatureSpec
from core.config import FeatureConfig
from core.vocab import Vocabulary
from modelkit.text_features import TextFeatures

BUCKETS: tuple[int, ...] = (1, 8, 32, 128, 256)
OUTPUT_NAMES: tuple[str, ...] = ("next_cats", "buy", "churn", "trajectory")
_FLAT_OUTPUTS = ("buy", "churn")  # (n, 1) heads returned as (n,)
_FILES = ("model.keras", "vocab.json", "feature_config.json", "feature_spec.json", "metadata.json")


def bucket_size(n: int) -> int:
    """Smallest bucket that holds ``n`` rows (``n`` at most ``BUCKETS[-1]``)."""
    return next(b for b in BUCKETS if b >= n)


class Predictor:
    """Fast batched inference for a model with named inputs.

    The ``tf.function`` has a ``None`` batch dimension, so it traces once. Batches are
    still padded to :data:`BUCKETS` (and split into chunks of the largest) so the runtime
    only ever sees a handful of shapes and memory per call stays bounded.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.input_specs = {
            t.name: tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=t.name) for t in model.inputs
        }
        self._fn = tf.function(self._forward, input_signature=[self.input_specs])

    def _forward(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return dict(self.model(inputs, training=False))

    def _check(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = sorted(set(self.input_specs) - set(inputs))
        if missing:
            raise ValueError(f"model inputs missing: {missing}")
        out, sizes = {}, set()
        for name, spec in self.input_specs.items():
            value = np.asarray(inputs[name], dtype=spec.dtype.as_numpy_dtype)
            if tuple(value.shape[1:]) != tuple(spec.shape[1:]):
                raise ValueError(
                    f"input {name!r} has shape {value.shape}, expected (n, {tuple(spec.shape[1:])})"
                )
            sizes.add(value.shape[0])
            out[name] = value
        if len(sizes) != 1:
            raise ValueError(f"inputs disagree on the number of rows: {sorted(sizes)}")
        return out

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``n`` rows; returns numpy outputs with ``buy``/``churn`` as ``(n,)``."""
        arrays = self._check(inputs)
        n = next(iter(arrays.values())).shape[0]
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, max(n, 1), BUCKETS[-1]):
            chunk = {k: v[start : start + BUCKETS[-1]] for k, v in arrays.items()}
            rows = next(iter(chunk.values())).shape[0]
            size = bucket_size(max(rows, 1))
            padded = {
                k: np.concatenate([v, np.zeros((size - rows, *v.shape[1:]), v.dtype)])
                for k, v in chunk.items()
            }
            parts.append({k: v.numpy()[:rows] for k, v in self._fn(padded).items()})
        result = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        for name in _FLAT_OUTPUTS:
            if name in result:
                result[name] = result[name].reshape(-1)
        return result

    def warmup(self, sizes: tuple[int, ...] = BUCKETS) -> None:
        """Call the function once per bucket size so first requests pay no setup cost."""
        for size in sizes:
            self._fn(
                {k: tf.zeros((size, *s.shape[1:]), s.dtype) for k, s in self.input_specs.items()}
            )


@dataclass
class Bundle:
    """A loaded model bundle; ``predict`` is the one inference path for every consumer."""

    model: keras.Model
    vocab: Vocabulary
    feature_config: FeatureConfig
    spec: FeatureSpec
    metadata: dict[str, Any]
    path: Path
    predictor: Predictor
    text: TextFeatures | None = None  # text vectorisers (``text.json``), when the model reads text

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """See :meth:`Predictor.predict`."""
        return self.predictor.predict(inputs)

    def warmup(self, sizes: tuple[int, ...] = BUCKETS) -> None:
        """See :meth:`Predictor.warmup`."""
        self.predictor.warmup(sizes)

    def reference(self) -> pd.DataFrame | None:
        """The training reference profile, or ``None`` when the bundle has none."""
        file = self.path / "reference.parquet"
        return pd.read_parquet(file) if file.is_file() else None


def save_bundle(
    directory: Path,
    model: keras.Model,
    vocab: Vocabulary,
    feature_config: FeatureConfig,
    spec: FeatureSpec,
    metadata: dict[str, Any],
    reference: pd.DataFrame | None = None,
    text: TextFeatures | None = None,
) -> Path:
    """Write a bundle folder (created if needed) and return its path.

    Raises:
        ValueError: when ``spec`` and ``vocab`` disagree on the number of categories.
    """
    if spec.n_categories != vocab.size:
        raise ValueError(
            f"feature spec has n_categories={spec.n_categories} but the vocabulary has {vocab.size}"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    vocab.save(directory / "vocab.json")
    (directory / "feature_config.json").write_text(feature_config.model_dump_json(indent=2))
    (directory / "feature_spec.json").write_text(spec.to_json())
    (directory / "metadata.json").write_text(
        json.dumps(metadata, indent=2, sort_keys=True, default=str)
    )
    if reference is not None:
        reference.to_parquet(directory / "reference.parquet", index=False)
    if text is not None:
        text.save(directory)
    return directory


def load_bundle(directory: Path) -> Bundle:
    """Load a bundle folder written by :func:`save_bundle` (``safe_mode=True``).

    Raises:
        FileNotFoundError: naming the missing bundle files.
    """
    directory = Path(directory)
    missing = [name for name in _FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"bundle {directory} is missing {missing}")
    model = keras.saving.load_model(directory / "model.keras", safe_mode=True, compile=False)
    return Bundle(
        model=model,
        vocab=Vocabulary.load(directory / "vocab.json"),
        feature_config=FeatureConfig.model_validate_json(
            (directory / "feature_config.json").read_text()
        ),
        spec=FeatureSpec.from_json((directory / "feature_spec.json").read_text()),
        metadata=json.loads((directory / "metadata.json").read_text()),
        path=directory,
        predictor=Predictor(model),
        text=TextFeatures.load(directory),
    )
