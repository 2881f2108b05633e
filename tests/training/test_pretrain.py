"""Self-supervised pre-training arrays and by-name weight transfer."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from modelkit.builder import build_model
from modelkit.model_config import ModelConfig
from training.pretrain import (
    CATEGORY_LAYERS,
    build_pretrain_model,
    compile_pretrain_model,
    make_pretrain_arrays,
    transfer_encoder_weights,
)

CONFIG = ModelConfig(units=8, cat_embed_dim=8, period_units=4, head_units=8, attention_units=4)


def test_pretrain_arrays_shift_by_one_event(toy_arrays):
    arrays = toy_arrays.select(np.arange(3))
    arrays.cat[:] = [[0, 0, 0, 0, 0, 5], [0, 0, 0, 3, 4, 7], [2, 3, 4, 5, 6, 8]]
    arrays.age[:] = np.log1p(np.array([[0, 0, 0, 0, 0, 1], [0, 0, 0, 9, 5, 2], [7, 6, 5, 4, 3, 1]]))
    inputs, targets = make_pretrain_arrays(arrays)
    np.testing.assert_array_equal(targets["next_event"], [7, 8])  # 1-event sample dropped
    np.testing.assert_array_equal(inputs["cat"], [[0, 0, 0, 0, 3, 4], [0, 2, 3, 4, 5, 6]])
    np.testing.assert_allclose(np.expm1(inputs["age"][0]), [0, 0, 0, 0, 7, 3], atol=1e-4)
    assert set(inputs) == {"cat", "beh", "hour", "gap", "age"}


def test_pretrained_encoder_transfers(tiny_spec, toy_arrays):
    pre = compile_pretrain_model(build_pretrain_model(CONFIG, tiny_spec), CONFIG, jit_compile=False)
    inputs, targets = make_pretrain_arrays(toy_arrays)
    history = pre.fit(inputs, targets, epochs=1, batch_size=16, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    model = build_model(CONFIG, tiny_spec)
    copied = transfer_encoder_weights(pre, model)
    assert copied >= 4  # embeddings, recurrent layer, pooling, user_dense, tied head
    for name in ("cat_embedding", "encoder_rnn_0", "pooling"):
        for a, b in zip(
            pre.get_layer(name).get_weights(), model.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(a, b)

    fresh = build_model(CONFIG, tiny_spec)
    fewer = transfer_encoder_weights(pre, fresh, skip=CATEGORY_LAYERS)
    assert fewer == copied - 2  # cat_embedding and next_cats_logits left alone
    assert not np.array_equal(
        pre.get_layer("cat_embedding").get_weights()[0],
        fresh.get_layer("cat_embedding").get_weights()[0],
    )
