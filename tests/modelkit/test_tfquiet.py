"""TensorFlow's C++ (absl) log lines are silenced at their source; INTEREST_TF_LOGS=1 keeps them.

A real subprocess imports the model kit (as the CLI and the service's workers do), then
Keras/TensorFlow, and fits and runs a masked LSTM (the op that printed ``E0000 ... oneDNN
supports DT_BOOL only ...``); its stderr must hold no absl line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelkit.tfquiet import ENV, drop_absl_lines

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
import modelkit  # arms the hook, as in the service's workers and the CLI
import numpy as np
import keras
x = np.array([[1, 2, 0, 0]] * 8)
model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Embedding(5, 3, mask_zero=True),
                          keras.layers.LSTM(2), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, np.zeros((8, 1)), epochs=1, verbose=0)
model.predict(x, verbose=0)
print("a line of our own", file=sys.stderr)
"""


def _stderr(**env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in (ENV, "TF_CPP_MIN_LOG_LEVEL")}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stderr


@pytest.mark.slow  # two TensorFlow imports in fresh processes
def test_tensorflow_lines_are_silenced_unless_asked_for() -> None:
    quiet = _stderr()
    assert "a line of our own" in quiet  # what is not absl's still reaches stderr
    for noise in ("oneDNN", "absl::InitializeLog", "I0000", "E0000", "W0000"):
        assert noise not in quiet, quiet
    loud = _stderr(**{ENV: "1"})
    assert "oneDNN custom operations are on" in loud and "I0000" in loud


def test_only_absl_lines_are_dropped() -> None:
    data = (
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
        b"I0000 00:00:1796018119.219094   17346 port.cc:153] oneDNN custom operations are on.\n"
        b"E0000 00:00:1796017974.552262   13968 util.cc:131] oneDNN supports DT_BOOL only\n"
        b"error: data/x.csv: no column 'timestamp'\n"
        b"Epoch 1/2\n"
    )
    assert drop_absl_lines(data) == b"error: data/x.csv: no column 'timestamp'\nEpoch 1/2\n"
