"""Request and response models of the HTTP API (also the OpenAPI schema).

Structural checks (types, behaviour names, parseable timestamps) live here so pydantic
rejects them with the offending field's location; checks that depend on the deployed
configuration or the clock (event count, future events) live in :mod:`serving.encode`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.schema import BEHAVIORS

Behavior = Literal[BEHAVIORS]  # type: ignore[valid-type]
#: Structural cap so a single body cannot allocate unbounded lists before the
#: configured limits (ServingConfig.max_events / max_batch_users) are checked.
HARD_MAX_EVENTS = 100_000
HARD_MAX_USERS = 10_000
#: Timestamps the feature code can hold (int64 nanoseconds since the epoch, from 1970 on).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 4, 11, tzinfo=UTC)
TIME_RANGE = f"{EARLIEST:%Y-%m-%d}..{LATEST:%Y-%m-%d} (UTC)"


def _as_utc(value: datetime | None) -> datetime | None:
    # Naive timestamps are taken as UTC, the project's only time zone.
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    # Compared before astimezone, which overflows near years 1 and 9999.
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{value.isoformat()} is outside the supported range {TIME_RANGE}")
    return value.astimezone(UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class Event(_Strict):
    """One raw behaviour event of the user."""

    item_id: str = Field(
        min_length=1, max_length=256, description="the item's source id", examples=["2268318"]
    )
    category_id: str = Field(
        min_length=1,
        max_length=256,
        description="the category's source id (unknown ones count as oov_events)",
        examples=["2520377"],
    )
    behavior: Behavior = Field(description="what the user did", examples=["view"])
    timestamp: datetime = Field(
        description=f"ISO 8601 (naive = UTC) or unix seconds, within {TIME_RANGE}",
        examples=["2017-12-03T10:15:00Z"],
    )
    price: float | None = Field(
        None, allow_inf_nan=False, description="optional item price (an item attribute)"
    )
    brand: str | None = Field(None, max_length=256, description="optional brand id")
    session_id: str | None = Field(None, max_length=256, description="optional session id")
    text: str | None = Field(
        None,
        max_length=20_000,
        description="optional text of the event (a review, a search query); read by models "
        "with a text channel, only as history of later predictions",
    )
    item_text: str | None = Field(
        None,
        max_length=2_000,
        description="optional item attribute text (title or category path)",
    )

    _utc = field_validator("timestamp")(_as_utc)


class PredictRequest(_Strict):
    """One user's recent events and the prediction options."""

    # OpenAPI 3.0's singular `example` (BentoML's spec model rejects `examples` here); the
    # events precede the cutoff, so "Try it out" gets an answer rather than a 422.
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "user_id": "u-1001",
                "events": [
                    {
                        "item_id": "2268318",
                        "category_id": "2520377",
                        "behavior": "view",
                        "timestamp": "2017-12-03T10:15:00Z",
                    },
                    {
                        "item_id": "2333346",
                        "category_id": "2520771",
                        "behavior": "cart",
                        "timestamp": "2017-12-03T10:21:00Z",
                    },
                ],
                "top_k": 5,
                "cutoff": "2017-12-03T12:00:00Z",
            }
        }
    )

    user_id: str | None = Field(None, max_length=256, description="hashed before logging")
    events: list[Event] = Field(
        min_length=1,
        max_length=HARD_MAX_EVENTS,
        description="the user's events before the cutoff, any order (newest ones are used)",
    )
    top_k: int | None = Field(None, ge=1, le=1000, description="default ServingConfig.top_k")
    cutoff: datetime | None = Field(
        None,
        description=(
            f"predict as of this time (default: now, UTC), within {TIME_RANGE}. Events up to "
            "max_future_skew_s after it are tolerated and move the cutoff just past them."
        ),
    )

    _utc = field_validator("cutoff")(_as_utc)


class BatchRequest(_Strict):
    """Many users at once; each entry is answered independently."""

    users: list[PredictRequest] = Field(min_length=1, max_length=HARD_MAX_USERS)


class CategoryScore(BaseModel):
    """A candidate next category and its probability of being engaged."""

    category_id: str = Field(description="source id of the category")
    score: float = Field(description="probability of engaging with it within the horizon")


class BucketShare(BaseModel):
    """Predicted share of one trajectory bucket (a top category or "other")."""

    bucket: str = Field(description='a top category id, or "other"')
    share: float = Field(description="predicted share of the period's events")


class TrajectoryPeriod(BaseModel):
    """Predicted interest mix in one future period (1 = the period right after the cutoff)."""

    period: int = Field(description="1 = the period right after the cutoff")
    buckets: list[BucketShare]


class ModelId(BaseModel):
    """A stored model: its registry name and version, and its BentoML model tag."""

    name: str
    version: str
    bento_tag: str


class ModelRef(ModelId):
    """Which model answered."""

    alias: str | None = Field(
        None, description='"champion" while the registry says this version holds it, else null'
    )


class PredictResponse(BaseModel):
    """Prediction for one user."""

    request_id: str = Field(description="id of this answer in the prediction log")
    user_id: str | None = Field(description="as sent (hashed only in the log)")
    cutoff: datetime = Field(description="the time the prediction is made as of (UTC)")
    next_categories: list[CategoryScore] = Field(
        description="top_k categories most likely engaged with within the horizon"
    )
    p_buy: float = Field(description="probability of a purchase within the horizon")
    p_churn: float = Field(description="probability of no event within the horizon")
    trajectory: list[TrajectoryPeriod] = Field(
        description="predicted interest mix per future period"
    )
    period: str = Field(description="length of one trajectory period (hour/day/week)")
    events_used: int = Field(description="events inside the model's window")
    oov_events: int = Field(description="events whose category the model does not know")
    model: ModelRef


class BatchResponse(BaseModel):
    """Predictions in request order."""

    predictions: list[PredictResponse]


class ModelInfo(BaseModel):
    """What is deployed: identity, quality and the data/feature contract it was trained on."""

    model: ModelRef
    is_champion: bool | None = Field(
        description="the served version holds `champion` now; null: unknown (registry_error)"
    )
    champion_version: str | None = Field(description="the version holding `champion` now")
    registry_error: str | None = Field(description="why the registry could not be read")
    checked_at: datetime | None = Field(description="when the registry was last read")
    shadow: ModelId | None = Field(description="the challenger predicting in shadow, if any")
    shadow_error: str | None = Field(None, description="why the wanted shadow is not running")
    runtime: str = Field(
        description="model runtime serving single-user requests: tflite, xla or tf.function "
        "(measured at load; per batch size in metadata.runtime)"
    )
    metrics: dict[str, float | None]
    feature_spec_hash: str
    vocab_hash: str
    feature_spec: dict
    data_fingerprint: dict
    metadata: dict


class ErrorBody(BaseModel):
    """A 4xx answer: what was wrong and where."""

    error: str
    field: str


class ModelTagRequest(_Strict):
    """Body of the admin endpoints: a model in the BentoML store."""

    model_tag: str = Field(min_length=1, max_length=256, examples=["interest-evolution:latest"])


class ReloadResponse(BaseModel):
    """The model now served and the one it replaced."""

    model: ModelRef
    previous: ModelId


class ShadowResponse(BaseModel):
    """The shadow model now (null: none) and the one it replaced."""

    shadow: ModelId | None
    previous: ModelId | None
