"""Start the purchase/churn heads at a logistic regression fitted on the training labels.

The heads of :func:`modelkit.builder.build_model` are residuals over a prior: a 1-D
heuristic logit (:class:`modelkit.priors.HeuristicLogit`) or, with
``ModelConfig.linear_heads``, a :class:`modelkit.heads.LinearLogit` over all count
features. A few epochs at the small learning rates the study uses barely move either, so
the prior starts where a ridge logistic regression on the training samples is.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.linear_model import LogisticRegression

from core.arrays import SequenceArrays

#: Inverse ridge strength; 0.1 and 1.0 scored alike on Taobao/Tmall validation.
RIDGE_C = 0.1


def fit_linear_logit(
    x: np.ndarray, y: np.ndarray, *, c: float = RIDGE_C
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(center, spread, coef, bias)`` of a ridge logistic regression on standardised ``x``.

    One-class labels give zero coefficients and the smoothed log-odds of the rate as bias;
    constant columns keep spread 1 and get no weight.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64).ravel()
    center = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    spread = x.std(axis=0) if len(x) else np.ones(x.shape[1])
    spread = np.where(spread > 1e-6, spread, 1.0)
    rate = (y.sum() + 0.5) / (len(y) + 1.0)
    if len(y) == 0 or y.min() == y.max():
        return center, spread, np.zeros(x.shape[1]), float(np.log(rate / (1 - rate)))
    model = LogisticRegression(C=c, max_iter=2000).fit((x - center) / spread, y)
    return center, spread, model.coef_.ravel(), float(model.intercept_[0])


def head_features(model: keras.Model, arrays: SequenceArrays) -> np.ndarray:
    """The ``head_features`` layer's output on ``arrays`` (count features, no weights)."""
    heuristic = model.get_layer("heuristic_features")
    counts = model.get_layer("head_counts")
    args = (arrays.age, arrays.cat, arrays.period_counts)
    return np.concatenate([np.asarray(heuristic(*args)), np.asarray(counts(*args))], axis=-1)


def init_linear_heads(model: keras.Model, train: SequenceArrays) -> None:
    """Set ``buy_prior`` and ``churn_prior`` to logistic fits on the training labels."""
    x = head_features(model, train)
    labels = train.labels()
    for head in ("buy", "churn"):
        center, spread, coef, bias = fit_linear_logit(x, labels[head])
        layer = model.get_layer(f"{head}_prior")
        layer.center.assign(center.astype(np.float32))
        layer.spread.assign(spread.astype(np.float32))
        layer.coef.assign(coef.astype(np.float32))
        layer.bias.assign(np.float32(bias))
