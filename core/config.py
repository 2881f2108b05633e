"""One typed configuration for the whole product.

Defaults live here, in code. A YAML or TOML file (``--config`` or ``INTEREST_CONFIG``) and
environment variables only override them; nothing is read at import time.

Environment variables:
    INTEREST_CONFIG: path of a YAML/TOML file of overrides.
    INTEREST_STATE_DIR: project state folder (default ``./.state``).
    INTEREST_TRACKING_URI: MLflow tracking URI (default SQLite in the state folder).
    INTEREST_OPTUNA_STORAGE: Optuna storage URL (default SQLite in the state folder).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DataFormat = Literal[
    "taobao", "tmall", "amazon", "amazon_reviews", "rees46", "generic", "canonical"
]
Period = Literal["hour", "day", "week"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class PathsConfig(_Section):
    """Where all state lives. Empty strings mean "derive from ``state_dir``"."""

    state_dir: Path = Path(".state")
    tracking_uri: str = ""
    artifact_root: str = ""
    optuna_storage: str = ""
    bentoml_home: str = ""
    evidently_workspace: str = ""
    prediction_log: str = ""
    logs: str = ""

    def resolved(self) -> ResolvedPaths:
        """Return absolute paths, deriving unset ones from ``state_dir``."""
        root = self.state_dir.expanduser().resolve()
        return ResolvedPaths(
            state_dir=root,
            tracking_uri=self.tracking_uri or f"sqlite:///{root / 'mlflow.db'}",
            artifact_root=self.artifact_root or str(root / "mlartifacts"),
            optuna_storage=self.optuna_storage or f"sqlite:///{root / 'optuna.db'}",
            bentoml_home=Path(self.bentoml_home or root / "bentoml"),
            evidently_workspace=Path(self.evidently_workspace or root / "evidently"),
            prediction_log=Path(self.prediction_log or root / "predictions"),
            logs=Path(self.logs or root / "logs"),
        )


class ResolvedPaths(BaseModel):
    """Absolute locations derived from :class:`PathsConfig`."""

    state_dir: Path
    tracking_uri: str
    artifact_root: str
    optuna_storage: str
    bentoml_home: Path
    evidently_workspace: Path
    prediction_log: Path
    logs: Path


class DataConfig(_Section):
    """How to read an event log into the canonical schema."""

    format: DataFormat = "taobao"
    # Which source key plays the role of "category": category id, brand id or item id.
    category_key: Literal["category_id", "brand", "item_id"] = "category_id"
    # Tmall 2014 dates are "M-D" with no year.
    year: int = 2014
    # Amazon: optional item metadata file (item_id -> category) for categories.
    item_meta: Path | None = None
    # Generic format: canonical column -> source column.
    column_map: dict[str, str] = Field(default_factory=dict)
    # Generic format: source behaviour value -> canonical behaviour.
    behavior_map: dict[str, str] = Field(default_factory=dict)
    # Validation fails when more than this share of rows would be dropped.
    max_drop_share: float = Field(0.05, ge=0.0, le=1.0)
    # Keep only events in [window_start, window_end) (UTC ISO strings); outside rows are reported.
    window_start: str | None = None
    window_end: str | None = None
    # Longer free text (``text``, ``item_text``) is cut to this many characters and counted.
    max_text_chars: int = Field(20_000, ge=1)


class FeatureConfig(_Section):
    """The sequence-feature contract shared by training, serving and monitoring."""

    max_events: int = Field(50, ge=1)  # N: last events per user before the cutoff
    period: Period = "day"
    n_periods: int = Field(7, ge=1)  # P: history periods for the long-term branch
    top_categories: int = Field(30, ge=1)  # C: trajectory buckets (+1 "other")
    horizon: str = "3D"  # label window after the cutoff (pandas offset string)
    future_periods: int = Field(3, ge=1)  # K: trajectory periods after the cutoff
    min_freq: int = Field(1, ge=1)  # categories rarer than this map to OOV
    # Cap on history before the cutoff. Capped, a request's window looks the same whenever it
    # is served, so monitoring compares like with like (uncapped, seq_len drifts as logs age).
    history: str | None = "7D"


class SplitConfig(_Section):
    """Strictly temporal splits. Cutoffs are UTC ISO strings; unset ones are derived."""

    test_cutoff: str | None = None  # default: last event time - horizon
    val_cutoff: str | None = None  # default: test_cutoff - horizon
    n_train_cutoffs: int = Field(3, ge=1)  # rolling cutoffs multiply training samples
    train_step: str | None = None  # spacing of train cutoffs; default: one period
    # Train cutoffs whose labels run into the validation window: the last one train_step
    # before validation instead of one label span. For logs too short for a strictly
    # temporal split at the wanted horizon (Taobao's 9 days at the 3-day protocol): the
    # validation score is then optimistic for model selection, the test score stays clean
    # (validation and test label windows still never overlap).
    overlap_train_labels: bool = False


class TrainConfig(_Section):
    """Defaults for training and tuning jobs."""

    epochs: int = Field(5, ge=1)
    batch_size: int = Field(256, ge=1)
    seed: int = 42
    trials: int = Field(10, ge=1)
    timeout_s: float | None = None
    study_name: str = "interest-evolution"
    experiment: str = "interest-evolution"
    pretrain_epochs: int = Field(1, ge=0)
    # Platt-calibrate buy/churn on validation (a second fit on train only). Off: on the shared
    # samples no map fitted on validation (Platt, intercept-only, temperature) lowered test
    # ECE on both logs. Cause: both logs start at a fixed date, so window counts grow with
    # the cutoff (events/user Taobao 15-24 train, 30 val, 50 test; Tmall 23-46, 77, 101)
    # and the heads' predicted rates climb with them while true rates stay flat; the
    # validation twin's error one step ahead is not the refit's at test (Taobao buy ECE
    # 0.114 -> 0.078 with Platt, Tmall buy 0.046 -> 0.087).
    calibrate: bool = False
    # The refit trains this many members of the winning plan (seeds seed, seed+1, ...) and
    # saves one Keras model averaging their outputs (modelkit.ensemble); trials train one.
    # 1: members of the searched plans stay near the shared history prior, so 3 members
    # matched one (test recall@10 Taobao 0.3938 vs 0.3938, Tmall 0.1748 vs 0.1746; 2 epochs)
    # at 3x the refit time.
    ensemble: int = Field(1, ge=1)
    # Fit text vectorisers (event text, item attributes) on the training window and let the
    # study switch the text channels on (training.text_data). Off: logs train as before.
    text_features: bool = False
    # Model settings every trial of the study uses (ModelConfig field -> value, e.g.
    # {popularity_from = "latest"}): recorded as one-choice trial params, so the refit rebuilds them.
    # Only fields the study does not search (training.search.suggest checks).
    fixed_params: dict[str, Any] = Field(default_factory=dict)
    # Baselines scored next to every model (the protocol of shared/data/README.md).
    baseline_pop_window: str = "3D"
    baseline_half_life_days: float = Field(1.0, gt=0)
    # "stream": trials and refit read feature shards through tf.data (memory bounded by the
    # shuffle buffer, not the log); "memory": whole arrays in memory (small logs, fastest).
    input: Literal["memory", "stream"] = "memory"
    shuffle_buffer: int = Field(10_000, ge=1)  # samples; the stream's memory bound
    shard_rows: int = Field(50_000, ge=1)  # samples per shard written from in-memory arrays
    # Stream mode: validation and test samples held in memory, and whose users' raw events
    # are loaded for the baselines and the gate (a hash-chosen user share of about this many
    # samples; every user when the splits are smaller). Memory grows with it, not the log.
    eval_samples: int = Field(100_000, ge=1)
    # Stream mode: Optuna trials train and select on the shards of this hash-chosen share of
    # users (eventlogs.subset.in_user_share); the refit trains on every user. Below 1 it
    # makes a study on a log of 100M events practical on a few cores.
    trial_share: float = Field(1.0, gt=0.0, le=1.0)


class RegistryConfig(_Section):
    """Model registry and the promotion gate."""

    model_name: str = "interest-evolution"
    primary_metric: str = "recall_at_10"
    # The margin: the lower end of the paired-bootstrap interval of the challenger's relative
    # gain over the champion and over the best baseline must be above it (0.0: a sure gain).
    min_improvement: float = 0.0
    # Two-sided level of that interval; at 0.95 a +0.9 % gain on 900 users is noise.
    confidence: float = Field(0.95, gt=0.0, lt=1.0)
    bootstrap_resamples: int = Field(1000, ge=1)
    bootstrap_seed: int = 0
    # A challenger losing more than guard_tolerance (absolute, point values on the same
    # users) of any of these to the champion is refused, whatever its primary metric.
    guard_metrics: list[str] = Field(
        default_factory=lambda: ["buy_auc", "churn_auc", "explore_recall_at_10"]
    )
    guard_tolerance: float = Field(0.01, ge=0.0)


class ServingConfig(_Section):
    """The BentoML service."""

    bento_model: str = "interest-evolution"
    max_events: int = Field(2000, ge=1)  # per request
    max_batch_users: int = Field(256, ge=1)
    max_body_bytes: int = Field(4_000_000, ge=1)
    top_k: int = Field(10, ge=1)
    auth_token: str | None = None
    log_rotate_rows: int = Field(50_000, ge=1)
    # "sync": a micro-batch's records are written before its answers (a 503 when they cannot
    # be), so a killed server loses no record of a 200; "queued": a background thread writes
    # them after the answers (flushed at shutdown; a killed server loses what is queued).
    # Measured back to back on a quiet machine, queued is no faster (README "Serving speed"),
    # so the durable mode is the default (serving/logqueue.py, CONTRACT.md).
    log_write: Literal["queued", "sync"] = "sync"
    log_queue_batches: int = Field(1024, ge=1)  # micro-batches waiting at most, then dropped
    max_future_skew_s: float = 300.0  # tolerated clock skew for "events from the future"
    # Seconds between the service's registry checks of whether it serves the champion
    # (0 disables the check; /model then reports is_champion null).
    champion_check_s: float = Field(30.0, ge=0.0)
    # Model runtimes tried at load (modelkit/runtime.py) per padded batch size: each must
    # match the Keras outputs within 1e-4 on a test set, the fastest serves; () = Keras only.
    # Reference model on 2 cores: TFLite wins batch 1 (0.5 vs 2 ms), XLA 8 and 32 (about
    # 2x) but compiles 5-7 s per size at every model load, so it is opt-in ("xla", and
    # batches 1, 8, 32); the Keras graph keeps 256 (TFLite there is 4x slower).
    runtime_candidates: tuple[Literal["tflite", "xla"], ...] = ("tflite",)
    runtime_batches: tuple[int, ...] = (1, 8)


class MonitoringConfig(_Section):
    """Drift detection and retraining triggers."""

    # The decision (monitoring/drift.py) gives every monitored column a p-value and keeps the
    # columns the Benjamini-Hochberg procedure accepts at this false-discovery rate: with
    # ~15 columns, "any one column past its own threshold" fires on noise; BH bounds the
    # expected share of false discoveries among the columns it names.
    fdr: float = Field(0.05, gt=0.0, lt=1.0)
    # Numeric columns: two-sample Kolmogorov-Smirnov (no distribution assumed, sees location
    # and shape, exact on few-valued columns, computable from binned reference counts). Its
    # effect size is D, the largest gap between the two ECDFs; a column needs D at least
    # this to count (on 100k rows a D of 0.02 is already "significant").
    min_ks_effect: float = Field(0.1, ge=0.0, le=1.0)
    # Categorical columns (top_category, top_pred): chi-square test of homogeneity on counts
    # (rare categories pooled to >= 5 expected). Effect size: Cohen's w, bias-corrected;
    # 0.1 is Cohen's "small".
    min_chi2_effect: float = Field(0.1, ge=0.0)
    # Category-bucket shares (one share vector per user, the interest distribution itself):
    # a Wald / Hotelling test of the mean vectors with measured covariances. A chi-square on
    # summed shares assumes multinomial noise, which per-user shares do not have, and is far
    # too conservative (benchmarks/drift.py, 10% shift on 1,000 rows: p 0.24 vs 0.0003).
    # Effect size: Mahalanobis distance in per-user standard deviations, bias-corrected.
    min_share_effect: float = Field(0.1, ge=0.0)
    # A retrain needs at least this share of the checked columns to drift (past FDR and the
    # effect floor); 0.05 of ~15 columns means one column suffices.
    drift_share: float = Field(0.05, ge=0.0, le=1.0)
    # Segments (monitoring/segments.py): the same tests per user segment, under one BH rule
    # across columns x segments, so a shift in a tenth of the users that the whole window
    # dilutes still shows in its segment. A segment needs this many rows on both sides to
    # be tested (fewer: too little power, more hypotheses for nothing); 0 turns segments off.
    segment_min_rows: int = Field(400, ge=0)
    # "New" users: the window's history (first event to cutoff) is shorter than this.
    new_user_hours: float = Field(24.0, gt=0.0)
    # Category segments: the reference's most frequent top categories, the rest "other".
    segment_categories: int = Field(5, ge=0)
    # A segment's effect floors are the column floors times this. A segment is a selected
    # subpopulation whose make-up moves with the population (a 5% rise of seq_len moves users
    # across the activity terciles and shifts the segment's category shares): with 1.5 and
    # 200 rows, benchmarks/drift.py raised 10-50% false alarms; 2.0 and 400 rows raised none.
    segment_effect_factor: float = Field(2.0, ge=1.0)
    # Retrain on a realised-performance drop too (monitoring/policy.py, needs --data with
    # outcomes): the window's per-sample `perf_metric` against the champion's own test
    # scores; fires when the whole bootstrap interval of the relative change lies below
    # -perf_tolerance, and only with at least perf_min_users labelled users.
    perf_metric: str = "recall_at_10"
    perf_tolerance: float = Field(0.05, ge=0.0, lt=1.0)
    perf_min_users: int = Field(100, ge=1)
    perf_confidence: float = Field(0.95, gt=0.0, lt=1.0)
    # Display only: the per-column method and threshold of the Evidently report (built after
    # the decision, for people); they do not decide anything.
    stattest: str = "psi"
    stattest_threshold: float = 0.05
    min_rows: int = Field(500, ge=1)
    cooldown: str = "1h"
    retrain_trials: int = Field(2, ge=1)
    # Recent raw event log `interest monitor run` retrains on (None: pass --data).
    data_path: Path | None = None
    data_format: DataFormat | None = None  # default: data.format
    retrain_epochs: int | None = Field(None, ge=1)  # default: train.epochs


class ProjectConfig(_Section):
    """The whole configuration."""

    paths: PathsConfig = Field(default_factory=PathsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)


class ConfigError(ValueError):
    """A configuration that cannot be loaded, in one line a person can act on.

    Attributes:
        key: dotted key at fault (``train.trials``), or ``None`` for a whole-file problem.
        source: the file the bad value came from, or ``None`` when it came from an override
            (a CLI option) or the environment.
        detail: what is wrong with the value and what is accepted, without the key.
    """

    def __init__(self, detail: str, key: str | None = None, source: Path | None = None) -> None:
        self.key, self.source, self.detail = key, source, detail
        where = ": ".join(str(part) for part in (source, key) if part is not None)
        super().__init__(f"{where}: {detail}" if where else detail)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError("config file does not exist", source=path)
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        kind = "TOML" if path.suffix == ".toml" else "YAML"
        mark = getattr(err, "problem_mark", None)  # PyYAML's str() spans several lines
        reason = f"{err.problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else err
        raise ConfigError(f"not valid {kind}: {reason}", source=path) from err
    if not isinstance(data, dict):
        raise ConfigError("must hold a mapping at the top level", source=path)
    return data


def _section_model(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the last key of ``loc`` (for listing accepted keys)."""
    model: type[BaseModel] = ProjectConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _describe(error: Any) -> str:
    """One pydantic error as ``<what is wrong>, got <value>`` naming accepted values."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        model = _section_model(loc)
        accepted = ", ".join(model.model_fields) if model else "none"
        return f"unknown key; accepted keys: {accepted}"
    message = str(error["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")
    if error["type"] == "literal_error":
        message = f"must be one of {message.replace(' or ', ', ')}"
    elif error["type"].endswith(("_type", "_parsing")):
        message = f"must be {message}"
    elif error["type"] in {"greater_than_equal", "greater_than", "less_than", "less_than_equal"}:
        message = f"must be {message.removeprefix('be ')}".replace("greater than or equal to", ">=")
        message = message.replace("less than or equal to", "<=")
        message = message.replace("greater than", ">").replace("less than", "<")
    return f"{message}, got {error['input']!r}"


def _lookup(data: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    node: Any = data
    for part in loc:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(
    path: Path | None = None,
    overrides: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> ProjectConfig:
    """Build the configuration: code defaults < file < environment < explicit overrides.

    Args:
        path: YAML/TOML file; falls back to ``INTEREST_CONFIG`` when ``None``.
        overrides: nested mapping, e.g. ``{"train": {"epochs": 1}}`` (CLI options).
        env: environment to read (default ``os.environ``).

    Returns:
        The validated :class:`ProjectConfig`.

    Raises:
        ConfigError: the file is missing or not YAML/TOML, or a key is unknown or its value
            invalid; the message names the file (when the value came from it) and the key.
    """
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    file = path or (Path(env["INTEREST_CONFIG"]) if env.get("INTEREST_CONFIG") else None)
    if file is not None:
        data = _read_file(Path(file))
    env_paths = {
        "state_dir": env.get("INTEREST_STATE_DIR"),
        "tracking_uri": env.get("INTEREST_TRACKING_URI"),
        "optuna_storage": env.get("INTEREST_OPTUNA_STORAGE"),
    }
    data = _merge(data, {"paths": {k: v for k, v in env_paths.items() if v}})
    data = _merge(data, overrides or {})
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = tuple(first["loc"])
        from_override = _lookup(overrides or {}, loc)
        source = Path(file) if file is not None and not from_override else None
        key = ".".join(str(part) for part in loc)
        raise ConfigError(_describe(first), key=key, source=source) from err
