"""Hyperparameters of the interest-evolution model: one frozen dataclass, defaults in code.

Variants (cell type, pooling, optional branches) are values here, never copied model files;
``training.tune`` suggests a :class:`ModelConfig` and ``build_model`` turns it into a network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

CELLS: tuple[str, ...] = ("lstm", "gru", "bilstm")
POOLINGS: tuple[str, ...] = ("last", "mean", "attention", "target_attention")
NEXT_CATS_LOSSES: tuple[str, ...] = ("softmax", "bce")
NEXT_CATS_HEADS: tuple[str, ...] = ("prior", "mixture")
POPULARITY_FROM: tuple[str, ...] = ("all", "latest")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and optimisation settings; see ``modelkit.builder.build_model``."""

    cell: str = "lstm"  # lstm | gru | bilstm (bidirectional: pooled context, not causal)
    n_layers: int = 1  # stacked recurrent layers over the event sequence
    units: int = 64  # recurrent width per direction
    cat_embed_dim: int = 32  # also the width of tied output embeddings
    beh_embed_dim: int = 4  # only ~5 behaviours: a few dimensions suffice
    hour_embed_dim: int = 4  # 24 hours + padding
    dropout: float = 0.1  # on event embeddings and between stacked layers
    # last | mean | attention (additive self-attention) | target_attention (low-rank DIN
    # over candidate categories, see modelkit.layers.TargetAttention)
    pooling: str = "attention"
    attention_units: int = 32  # hidden width of additive attention scoring
    n_interests: int = 4  # M interest queries of target_attention; cost O(M * (N + V))
    use_time_features: bool = True  # gap, age and hour of each event
    use_period_branch: bool = True  # recurrent branch over period_dist + period_counts
    period_units: int = 32
    # Next-category logits from the category embedding table: fewer parameters and the
    # table learned in pre-training directly shapes the output space (helps transfer).
    tie_output_embeddings: bool = True
    head_units: int = 64  # shared dense layer between the user vector and the heads
    # Residual over personal-frequency-with-decay + popularity (modelkit.priors): the
    # model starts at the best heuristic and learns transitions on top.
    use_history_prior: bool = True
    # softmax: listwise cross-entropy, next_cats are softmax probabilities (ranks better);
    # bce: per-category binary cross-entropy, next_cats are sigmoid probabilities.
    next_cats_loss: str = "softmax"
    # prior: softmax(history prior + gated learned logits). mixture: repeat/explore
    # switch (modelkit.mixture): p_repeat * copy-from-history + (1 - p_repeat) * generator
    # over V; only 36% of Taobao horizon categories are in the history, so the explore
    # part is where a sequence model can beat frequency. Needs next_cats_loss="softmax".
    next_cats_head: str = "prior"
    use_persistence_prior: bool = True  # trajectory logits = log(persistence) + residual
    use_activity_features: bool = True  # counts and recency feed the buy/churn heads
    # buy/churn logits = fitted prior + zero-init residual over the encoder. The prior is a
    # 1-D heuristic (past carts+buys, recency) or, with linear_heads, a logistic regression
    # over every count feature (modelkit.heads; +0.02-0.03 test AUC on Taobao and Tmall).
    use_heuristic_heads: bool = True
    linear_heads: bool = True
    # Initial scale of the (row-standardised) learned next-category logits over the history
    # prior, a learned scalar gate: 0, so training starts at the prior and opens it only
    # as far as it lowers the loss (measured on Taobao: 0.1 starts 0.001 lower in recall).
    next_cats_gate: float = 0.0
    # Where the history prior's per-category popularity starts (training.fit.initialise_priors):
    # "all": label shares over every training cutoff; "latest": over the latest training
    # cutoff only, the popularity nearest the scored cutoff. It ranks a user's own categories
    # too (a brand popular now is likelier to be touched again): on Tmall the 30-day
    # popularity at the cutoff is the strongest feature a GBDT adds to the decay scores.
    popularity_from: str = "all"
    # Text channels (modelkit.text_features): the mean token embedding of the user's latest
    # event texts (use_text) and of their items' attributes (use_item_attrs) joins the pooled
    # sequence. Off by default: the feature spec must carry the channel to switch one on.
    use_text: bool = False
    use_item_attrs: bool = False
    # Content-aware categories (modelkit.content, modelkit.text_layers.CategoryContent): each
    # category's embedding (input side and tied output table) adds the projected mean token
    # embedding of its own training-window text, so unseen items inherit from similar ones.
    use_content: bool = False
    text_embed_dim: int = 32
    loss_next_cats: float = 1.0
    loss_buy: float = 0.5
    loss_churn: float = 0.5
    loss_trajectory: float = 0.5
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"ModelConfig.cell must be one of {CELLS}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"ModelConfig.pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.next_cats_loss not in NEXT_CATS_LOSSES:
            raise ValueError(
                f"ModelConfig.next_cats_loss must be one of {NEXT_CATS_LOSSES}, "
                f"got {self.next_cats_loss!r}"
            )
        if self.next_cats_head not in NEXT_CATS_HEADS:
            raise ValueError(
                f"ModelConfig.next_cats_head must be one of {NEXT_CATS_HEADS}, "
                f"got {self.next_cats_head!r}"
            )
        if self.popularity_from not in POPULARITY_FROM:
            raise ValueError(
                f"ModelConfig.popularity_from must be one of {POPULARITY_FROM}, "
                f"got {self.popularity_from!r}"
            )
        if self.next_cats_head == "mixture" and self.next_cats_loss != "softmax":
            raise ValueError('next_cats_head="mixture" outputs probabilities: needs "softmax" loss')
        for name in (
            "n_layers",
            "units",
            "cat_embed_dim",
            "beh_embed_dim",
            "hour_embed_dim",
            "attention_units",
            "n_interests",
            "period_units",
            "head_units",
            "text_embed_dim",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be in [0, 1), got {self.dropout}")
        if self.next_cats_gate < 0:
            raise ValueError(f"ModelConfig.next_cats_gate must be >= 0, got {self.next_cats_gate}")
        if self.learning_rate <= 0:
            raise ValueError(f"ModelConfig.learning_rate must be > 0, got {self.learning_rate}")

    def loss_weights(self) -> dict[str, float]:
        """Loss weight per output head, keyed by output name."""
        return {
            "next_cats": self.loss_next_cats,
            "buy": self.loss_buy,
            "churn": self.loss_churn,
            "trajectory": self.loss_trajectory,
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (MLflow params, JSON)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from :meth:`to_dict` output; missing keys take defaults.

        Raises:
            ValueError: on keys that are not ModelConfig fields.
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {unknown}")
        # MLflow params come back as strings: coerce to each default's type.
        kwargs = {k: _coerce(v, type(getattr(cls(), k))) for k, v in data.items()}
        return cls(**kwargs)


def _coerce(value: Any, kind: type) -> Any:
    if kind is bool and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return kind(value)
