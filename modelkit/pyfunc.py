"""The registered MLflow model: an ``mlflow.pyfunc`` model that takes raw events.

``mlflow.pyfunc.load_model("models:/interest-evolution@champion").predict(events)`` returns
the prediction table of :mod:`modelkit.scoring` (what ``/predict`` answers, one row per
user and cutoff), so ``mlflow models serve``, ``mlflow.pyfunc.spark_udf`` or a Dask
``map_partitions`` can score without this project's CLI. The model's only artifact is the
bundle folder; the code travels with it (``code_paths``: the ``core`` and ``modelkit``
packages), so a fresh process or environment needs the pip requirements, not this repository.

Input: the canonical event columns (``user_id``, ``item_id``, ``category_id``, ``behavior``,
``timestamp``) and a ``cutoff`` column, or the ``cutoff`` parameter for all rows. Times are
naive UTC (MLflow's schema check refuses timezone-aware columns: convert them with
``.dt.tz_convert("UTC").dt.tz_localize(None)``). Parameters: ``cutoff`` (ISO time, used when
the frame has no ``cutoff`` column) and ``top_k`` (0: the logged default, ``serving.top_k``).
"""

from __future__ import annotations

import importlib.metadata
import logging
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, Object, ParamSchema, ParamSpec, Property, Schema

from core.schema import OPTIONAL_COLUMNS
from core.vocab import Vocabulary

logger = logging.getLogger(__name__)

#: Name the pyfunc is logged under in the refit run (what ``register_run`` registers).
MODEL_NAME = "model"
BUNDLE_ARTIFACT = "bundle"
DEFAULT_TOP_K = 10
_PACKAGES = ("core", "modelkit")  # what the model's code imports from this repository
_REQUIREMENTS = ("mlflow", "tensorflow-cpu", "keras", "numpy", "pandas", "pyarrow", "pydantic")


class EventsModel(mlflow.pyfunc.PythonModel):
    """Raw events in, the prediction table of :func:`modelkit.scoring.score_events` out."""

    def __init__(self) -> None:
        self.top_k = DEFAULT_TOP_K
        self._bundle: Any = None
        self._version: str | None = None

    def load_context(self, context: Any) -> None:
        """Load the bundle artifact. ``model_config`` keys: ``top_k`` (the default ranking
        length) and ``model_version`` (else asked of the registry, when there is one)."""
        from modelkit.bundle import load_bundle

        self._bundle = load_bundle(Path(context.artifacts[BUNDLE_ARTIFACT]))
        config = getattr(context, "model_config", None) or {}
        self.top_k = int(config.get("top_k") or DEFAULT_TOP_K)
        self._version = config.get("model_version") or _registered_version(self._bundle)

    @property
    def bundle(self) -> Any:
        """The loaded :class:`modelkit.bundle.Bundle` (after ``load_context``)."""
        return self._bundle

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Score the events of ``model_input`` (a pandas DataFrame); see the module doc."""
        from modelkit.scoring import score_events

        params = params or {}
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        cutoff = params.get("cutoff") or None
        top_k = int(params.get("top_k") or self.top_k)
        return score_events(self._bundle, frame, cutoff, top_k=top_k, model_version=self._version)


def _registered_version(bundle: Any) -> str | None:
    """The registry version whose run wrote this bundle, when the registry can be asked."""
    if bundle.metadata.get("version"):
        return str(bundle.metadata["version"])
    run_id, name = bundle.metadata.get("run_id"), bundle.metadata.get("model_name")
    if not run_id or not name:
        return None
    try:
        found = mlflow.MlflowClient().search_model_versions(
            f"name = '{name}' and run_id = '{run_id}'"
        )
    except Exception as exc:  # noqa: BLE001 - no registry where the model runs is fine
        logger.info("model version unknown (registry not reachable: %s)", exc)
        return None
    return str(max(int(v.version) for v in found)) if found else None


def events_signature() -> ModelSignature:
    """Input columns (optional ones marked), output table and parameters of the pyfunc."""
    inputs = Schema(
        [
            ColSpec("string", "user_id"),
            ColSpec("string", "item_id"),
            ColSpec("string", "category_id"),
            ColSpec("string", "behavior"),
            ColSpec("datetime", "timestamp"),
            ColSpec("datetime", "cutoff", required=False),
            *(
                ColSpec("double" if c == "price" else "string", c, required=False)
                for c in OPTIONAL_COLUMNS
            ),
        ]
    )
    category = Object([Property("category_id", "string"), Property("score", "double")])
    share = Object([Property("bucket", "string"), Property("share", "double")])
    period = Object([Property("period", "long"), Property("buckets", Array(share))])
    outputs = Schema(
        [
            ColSpec("string", "user_id"),
            ColSpec("datetime", "cutoff"),
            ColSpec("string", "model_name"),
            ColSpec("string", "model_version", required=False),
            ColSpec(Array(category), "next_categories"),
            ColSpec("double", "p_buy"),
            ColSpec("double", "p_churn"),
            ColSpec(Array(period), "trajectory"),
            ColSpec("string", "period"),
            ColSpec("long", "events_used"),
            ColSpec("long", "oov_events"),
        ]
    )
    # MLflow fills absent params with these defaults: "" and 0 mean "not given".
    params = ParamSchema([ParamSpec("cutoff", "string", ""), ParamSpec("top_k", "long", 0)])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def pip_requirements() -> list[str]:
    """The packages the model's code needs, pinned to the versions installed here."""
    pinned = []
    for name in _REQUIREMENTS:
        try:
            pinned.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pinned.append(name)
    return pinned


def package_dirs() -> list[str]:
    """The folders of the packages the model's code imports (its ``code_paths``)."""
    import importlib

    return [str(Path(importlib.import_module(p).__file__).parent) for p in _PACKAGES]


def log_events_model(
    bundle_dir: Path, input_example: pd.DataFrame, *, top_k: int = DEFAULT_TOP_K
) -> Any:
    """Log the events-in pyfunc into the active run as :data:`MODEL_NAME`.

    Args:
        bundle_dir: the bundle folder (its only artifact).
        input_example: a few canonical events with a ``cutoff`` column.
        top_k: ranked categories per row when the caller sets none.

    Returns:
        MLflow's ``ModelInfo`` of the logged model.
    """
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
        model_config={"top_k": top_k},
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        code_paths=package_dirs(),
        signature=events_signature(),
        input_example=input_example,
        pip_requirements=pip_requirements(),
    )


def example_events(vocab: Vocabulary, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Two events of one user before ``cutoff`` in the vocabulary's top categories.

    Times are naive UTC: MLflow's ``datetime`` columns refuse timezone-aware values.
    """
    cutoff = pd.Timestamp(cutoff)
    cutoff = cutoff.tz_convert("UTC").tz_localize(None) if cutoff.tzinfo else cutoff
    categories = (list(vocab.categories) * 2)[:2]
    return pd.DataFrame(
        {
            "user_id": ["example-user", "example-user"],
            "item_id": ["item-1", "item-2"],
            "category_id": categories,
            "behavior": ["view", "cart"],
            "timestamp": [cutoff - pd.Timedelta(hours=2), cutoff - pd.Timedelta(hours=1)],
            "cutoff": [cutoff, cutoff],
        }
    )
