"""The array contract between feature building, models, serving and monitoring.

``core.features`` produces these; ``training`` builds Keras models from a
:class:`FeatureSpec` and fits them on :class:`SequenceArrays`; ``serving`` encodes a single
request's raw events into the same arrays with the same functions.

Shapes (``n`` samples = (user, cutoff) pairs, ``N`` = ``max_events``, ``P`` = ``n_periods``,
``C1`` = ``top_categories + 1`` trajectory buckets with the last one meaning "other",
``B`` = ``len(CORE_BEHAVIORS)``, ``V`` = ``n_categories``, ``K`` = ``future_periods``):

Inputs (``SequenceArrays.inputs()`` keys, also the Keras input names):
    cat        int32   (n, N)      category index; 0 = padding, 1 = out-of-vocabulary
    beh        int32   (n, N)      behaviour index (``core.schema.behavior_index``); 0 = padding
    hour       int32   (n, N)      hour of day + 1 (1..24); 0 = padding
    gap        float32 (n, N)      log1p(hours since the previous event); 0 for the first/padding
    age        float32 (n, N)      log1p(hours from the event to the cutoff); 0 for padding
    period_dist   float32 (n, P, C1)  share of each top-C bucket in each period (rows sum to 1
                                      or are all 0 for an empty period); oldest period first
    period_counts float32 (n, P, B)   log1p(count) of each core behaviour in each period

Events are left-padded: the most recent event is at position ``N - 1``.

Optional text inputs (present only when the bundle has a text vectoriser, see
:mod:`core.textbag` and :mod:`modelkit.text_features`; ``T``/``A`` = ``text_len``/``attr_len``):
    text_tokens int32 (n, T)  token ids of the user's latest event texts before the cutoff
    attr_tokens int32 (n, A)  token ids of the attributes (item text, brand, price bucket) of
                              the items of the user's latest events before the cutoff

Labels (``SequenceArrays.labels()`` keys, also the Keras output names):
    next_cats  float32 (n, V)      multi-hot of category indices engaged in [cutoff, cutoff+horizon)
                                  (index 0 is never set; OOV index 1 may be)
    buy        float32 (n,)        1 if any buy in the horizon
    churn      float32 (n,)        1 if no event in the horizon
    trajectory float32 (n, K, C1)  bucket distribution in each of the next K periods (all 0 if
                                  the period is empty)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

INPUT_NAMES: tuple[str, ...] = ("cat", "beh", "hour", "gap", "age", "period_dist", "period_counts")
#: Optional inputs: in :meth:`SequenceArrays.inputs` only when built (text channels).
TEXT_INPUT_NAMES: tuple[str, ...] = ("text_tokens", "attr_tokens")
LABEL_NAMES: tuple[str, ...] = ("next_cats", "buy", "churn", "trajectory")


#: FeatureSpec fields left out of its JSON when empty (specs without text hash as before).
_OPTIONAL_SPEC_FIELDS: tuple[str, ...] = (
    "n_text_tokens", "text_len", "n_attr_tokens", "attr_len", "text_hash",
    "n_content_tokens", "content_len", "content", "content_fit",
)  # fmt: skip


@dataclass(frozen=True)
class FeatureSpec:
    """Sizes the model needs, fixed when the vocabulary is fitted."""

    max_events: int
    n_periods: int
    n_buckets: int  # C1 = top_categories + 1
    n_behaviors: int  # embedding rows for behaviours: len(BEHAVIORS) + 1 (padding)
    n_core_behaviors: int  # B
    n_categories: int  # V, including padding (0) and OOV (1)
    future_periods: int  # K
    period: str
    horizon: str
    vocab_hash: str
    # Text channels (0: absent). Left out of the JSON when 0, so specs (and their hashes)
    # of models without text are unchanged.
    n_text_tokens: int = 0  # ids of the event-text vectoriser, padding and OOV included
    text_len: int = 0  # T
    n_attr_tokens: int = 0  # ids of the item-attribute vectoriser
    attr_len: int = 0  # A
    # Content hash of the text vocabularies: text layers are named after it, so a warm
    # start never copies token embeddings learned for another vocabulary.
    text_hash: str = ""
    # Content profiles of the categories (modelkit.content: per category the token ids of
    # its own training-window text, "V,K:base64"): ``content`` for scoring and serving,
    # ``content_fit`` (text before the earliest training cutoff) for training.
    n_content_tokens: int = 0
    content_len: int = 0  # K
    content: str = ""
    content_fit: str = ""

    def to_json(self) -> str:
        """Serialise to canonical JSON."""
        data = asdict(self)
        for name in _OPTIONAL_SPEC_FIELDS:
            if not data[name]:
                del data[name]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """Parse what :meth:`to_json` wrote."""
        return cls(**json.loads(text))

    @property
    def spec_hash(self) -> str:
        """Content hash of the spec (changes when any size or the vocabulary changes)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


@dataclass
class SequenceArrays:
    """Feature and label arrays for ``n`` (user, cutoff) samples; see module docstring."""

    user_id: np.ndarray  # object/str (n,)
    cutoff: np.ndarray  # datetime64[ns] UTC-naive (n,)
    cat: np.ndarray
    beh: np.ndarray
    hour: np.ndarray
    gap: np.ndarray
    age: np.ndarray
    period_dist: np.ndarray
    period_counts: np.ndarray
    next_cats: np.ndarray | None = None
    buy: np.ndarray | None = None
    churn: np.ndarray | None = None
    trajectory: np.ndarray | None = None
    text_tokens: np.ndarray | None = None
    attr_tokens: np.ndarray | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.cat.shape[0])

    def inputs(self) -> dict[str, np.ndarray]:
        """Model inputs keyed by :data:`INPUT_NAMES`, plus the text inputs that were built."""
        out = {name: getattr(self, name) for name in INPUT_NAMES}
        out.update({n: getattr(self, n) for n in TEXT_INPUT_NAMES if getattr(self, n) is not None})
        return out

    def labels(self) -> dict[str, np.ndarray]:
        """Labels keyed by :data:`LABEL_NAMES`.

        Raises:
            ValueError: if the arrays were built without labels (serving).
        """
        if self.next_cats is None:
            raise ValueError("these arrays were built without labels")
        return {name: getattr(self, name) for name in LABEL_NAMES}

    def select(self, index: np.ndarray) -> SequenceArrays:
        """Return the samples at ``index`` (a boolean mask or integer positions)."""
        kwargs = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                kwargs[f.name] = {k: v[index] for k, v in value.items()}
            else:
                kwargs[f.name] = None if value is None else value[index]
        return SequenceArrays(**kwargs)

    @staticmethod
    def concat(parts: list[SequenceArrays]) -> SequenceArrays:
        """Concatenate samples from several cutoffs."""
        if not parts:
            raise ValueError("nothing to concatenate")
        kwargs = {}
        for f in fields(SequenceArrays):
            values = [getattr(p, f.name) for p in parts]
            if f.name == "extra":
                keys = set(values[0])
                kwargs[f.name] = {k: np.concatenate([v[k] for v in values]) for k in keys}
            elif any(v is None for v in values):
                kwargs[f.name] = None
            else:
                kwargs[f.name] = np.concatenate(values)
        return SequenceArrays(**kwargs)

    def save(self, path: Path, *, compress: bool = True) -> None:
        """Write all arrays to one ``.npz`` file (uncompressed is faster for large shards)."""
        data = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extra" and getattr(self, f.name) is not None
        }
        data["user_id"] = data["user_id"].astype(str)
        data.update({f"extra__{k}": v for k, v in self.extra.items()})
        (np.savez_compressed if compress else np.savez)(path, **data)

    @classmethod
    def load(cls, path: Path) -> SequenceArrays:
        """Read what :meth:`save` wrote."""
        with np.load(path, allow_pickle=False) as z:
            names = set(z.files)
            kwargs = {f.name: z[f.name] for f in fields(cls) if f.name in names}
            kwargs["extra"] = {k[7:]: z[k] for k in names if k.startswith("extra__")}
        return cls(**kwargs)
