"""BentoML model store round trip of a bundle folder (no TensorFlow needed)."""

from __future__ import annotations

import json

import pytest

from serving.store import bundle_path, get_stored_model, import_bundle


def test_import_copies_the_bundle_and_labels_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BENTOML_DO_NOT_TRACK", "True")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    meta = {"model_name": "m", "version": 3, "metrics": {"auc": float("nan"), "r": 0.5}}
    (bundle / "metadata.json").write_text(json.dumps(meta))
    (bundle / "vocab.json").write_text("{}")
    home = tmp_path / "bentoml"
    tag = import_bundle(bundle, "interest-evolution", labels={"alias": "champion"}, home=home)
    assert tag.startswith("interest-evolution:")
    stored = get_stored_model("interest-evolution:latest", home=home)
    assert str(stored.tag) == tag
    assert stored.info.labels == {"model_name": "m", "version": "3", "alias": "champion"}
    assert stored.info.metadata["metrics"] == {"r": 0.5}  # NaN dropped: BentoML takes no None
    assert (bundle_path(stored) / "vocab.json").read_text() == "{}"


def test_import_rejects_a_folder_that_is_not_a_bundle(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        import_bundle(tmp_path, "x", home=tmp_path / "home")
