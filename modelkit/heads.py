"""A logistic regression over the purchase/churn heads' count features, as a layer.

:class:`LinearLogit` is the ``buy``/``churn`` prior when ``ModelConfig.linear_heads`` is on:
``((x - center) / spread) @ coef + bias`` over the concatenated
:class:`modelkit.priors.HeuristicFeatures` and :class:`modelkit.priors.ActivityFeatures`
(counts per behaviour over the window and in the last period, recency, events, active share).
``training.headfit`` fits it on the training labels before training, so the untrained head
is the best linear model of those counts; the zero-initialised residual over the sequence
encoder learns on top. Measured (logistic fit alone on training samples, scored on test):
Taobao buy AUC 0.551 (1-D heuristic) -> 0.585; Tmall buy 0.713 -> 0.741, churn 0.827 -> 0.842.

Registered under the ``interest`` package (imported by :mod:`modelkit.layers`), so saved
models load with ``safe_mode=True``.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

_PACKAGE = "interest"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LinearLogit(keras.layers.Layer):
    """``((x - center) / spread) @ coef + bias`` as a ``(B, 1)`` logit.

    ``center`` and ``spread`` are fixed (set with ``coef`` and ``bias`` from data by
    ``training.headfit``); ``coef`` and ``bias`` keep training with the rest of the model.

    Call: ``features (B, D)`` -> ``(B, 1)``.
    """

    def build(self, features_shape: Any) -> None:
        d = int(features_shape[-1])
        self.center = self.add_weight(
            name="center", shape=(d,), initializer="zeros", trainable=False
        )
        self.spread = self.add_weight(
            name="spread", shape=(d,), initializer="ones", trainable=False
        )
        self.coef = self.add_weight(name="coef", shape=(d,), initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(), initializer="zeros")

    def call(self, features: Any) -> Any:
        x = (ops.cast(features, "float32") - self.center) / self.spread
        return ops.sum(x * self.coef, axis=-1, keepdims=True) + self.bias

    def compute_output_shape(self, features_shape: Any) -> tuple:
        return (features_shape[0], 1)
