"""Vocabulary: ordering, min_freq, OOV, buckets, versioned JSON round trip and hash."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.config import FeatureConfig
from core.vocab import OOV_INDEX, Vocabulary, fit_vocabulary


def _events(cats: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"category_id": pd.Series(cats, dtype="string")})


def test_categories_sorted_by_frequency_then_id():
    vocab = fit_vocabulary(_events(["b", "a", "c", "c", "b", "d"]), FeatureConfig(top_categories=2))
    assert vocab.categories == ["b", "c", "a", "d"]
    assert vocab.size == 6


def test_min_freq_drops_rare_categories_to_oov():
    vocab = fit_vocabulary(_events(["a", "a", "b"]), FeatureConfig(min_freq=2))
    assert vocab.categories == ["a"]
    assert vocab.encode(["a", "b", "zz"]).tolist() == [2, OOV_INDEX, OOV_INDEX]


def test_encode_decode_and_buckets():
    vocab = Vocabulary(["x", "y", "z"], top_categories=2)
    idx = vocab.encode(np.array(["z", "x", "new"], dtype=object))
    assert idx.dtype == np.int32
    assert idx.tolist() == [4, 2, 1]
    assert vocab.decode([0, 1, 2, 4]) == ["<pad>", "<oov>", "x", "z"]
    assert vocab.bucket(np.array([0, 1, 2, 3, 4])).tolist() == [2, 2, 0, 1, 2]
    with pytest.raises(IndexError):
        vocab.decode([5])


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary(["x", "y"], top_categories=5)
    vocab.save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text())
    assert data["version"] == 1 and data["hash"] == vocab.hash
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.hash == vocab.hash


def test_hash_is_stable_and_content_sensitive():
    assert Vocabulary(["x", "y"], 2).hash == Vocabulary(["x", "y"], 2).hash
    assert Vocabulary(["x", "y"], 2).hash != Vocabulary(["y", "x"], 2).hash
    assert Vocabulary(["x", "y"], 2).hash != Vocabulary(["x", "y"], 3).hash


def test_tampered_file_is_rejected(tmp_path):
    data = Vocabulary(["x", "y"], 2).to_dict()
    data["categories"] = ["x", "q"]
    with pytest.raises(ValueError, match="hash mismatch"):
        Vocabulary.from_dict(data)
    with pytest.raises(ValueError, match="version"):
        Vocabulary.from_dict({**data, "version": 99})


def test_bucket_names_follow_the_bucket_mapping() -> None:
    vocab = Vocabulary(["a", "b", "c"], top_categories=2)
    assert vocab.bucket_names(3) == ["a", "b", "other"]
    names = vocab.bucket_names(3)
    # Every category's bucket carries that category's name, or "other" past the top C.
    for index, bucket in zip(
        range(2, vocab.size), vocab.bucket(np.arange(2, vocab.size)), strict=False
    ):
        expected = vocab.decode([index])[0] if bucket < 2 else "other"
        assert names[bucket] == expected
    # A vocabulary smaller than C leaves named placeholders, never a wrong category.
    assert Vocabulary(["a"], top_categories=3).bucket_names(4) == [
        "a",
        "<bucket 1>",
        "<bucket 2>",
        "other",
    ]


def test_small_inputs_get_the_same_indices_as_large_ones():
    # Up to DICT_LOOKUP_MAX values are looked up in a dict, more through pandas' index.
    from core.vocab import DICT_LOOKUP_MAX

    rng = np.random.default_rng(3)
    vocab = Vocabulary([f"c{i}" for i in range(500)], top_categories=5)
    pool = np.array([*vocab.categories, "unknown", "", "C1", "c1 ", None, 7], dtype=object)
    values = rng.choice(pool, DICT_LOOKUP_MAX + 500)
    large = vocab.encode(values)
    small = np.concatenate([vocab.encode(values[i : i + 100]) for i in range(0, len(values), 100)])
    np.testing.assert_array_equal(small, large)
    assert large.dtype == small.dtype == np.int32 and (large == 1).sum() > 0
    assert vocab.encode(["c0", "zz"]).tolist() == [2, 1]
