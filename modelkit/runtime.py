"""Model runtimes measured against each other: the Keras graph, XLA and TensorFlow Lite.

:class:`~modelkit.bundle.Predictor` runs the Keras model through one ``tf.function``
(``"tf.function"``). For a served model, :func:`select_runtime` also builds, per padded
batch size, a TensorFlow Lite interpreter (``"tflite"``: variables frozen, one fixed batch
size per interpreter, since Keras 3's LSTM loop only converts with static shapes) and an
XLA-compiled function (``"xla"``, optional), checks each against the Keras outputs on a
seeded test set (max abs difference at most :data:`TOLERANCE`), times it, and serves the
fastest variant that matches. A variant that fails to convert or to match is left out with
its reason; with nothing better the Keras graph serves (the fallback).

Measured on the reference-size model (2 cores; README serving section): TFLite wins at
batch 1 (about 0.5 ms vs 2 ms), loses badly at 256 (its ``WHILE`` loop runs the LSTM step
by step; Keras 3 LSTMs do not become the fused TFLite op).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from modelkit.bundle import _FLAT_OUTPUTS, BUCKETS, Predictor, bucket_size

TOLERANCE = 1e-4  # max abs difference to the Keras outputs for a variant to be served
KERAS = "tf.function"
RUNTIMES: tuple[str, ...] = (KERAS, "xla", "tflite")
Arrays = dict[str, np.ndarray]
Runner = Callable[[Arrays], Arrays]  # one padded batch size in, numpy outputs out


class LiteRunner:
    """A TensorFlow Lite interpreter for one fixed batch size (thread-safe: one call at a time).

    Args:
        content: the converted flatbuffer (:func:`convert_tflite`).
        output_keys: the output name of each interpreter output, in order (two outputs may
            share one tensor: the converter merges identical computations).
        threads: interpreter threads (1 measured fastest at batch 1 on 2 cores).
    """

    def __init__(self, content: bytes, output_keys: Sequence[str], threads: int = 1) -> None:
        import warnings

        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice
            warnings.simplefilter("ignore")
            self._it = tf.lite.Interpreter(model_content=content, num_threads=threads)
        self._it.allocate_tensors()
        self._inputs = {d["name"]: d["index"] for d in self._it.get_input_details()}
        details = self._it.get_output_details()
        if len(details) != len(output_keys):
            raise ValueError(f"{len(details)} TFLite outputs for {len(output_keys)} model outputs")
        self._outputs = [(k, d["index"]) for k, d in zip(output_keys, details, strict=True)]
        self._lock = threading.Lock()
        self.size = len(content)

    def __call__(self, inputs: Arrays) -> Arrays:
        """Outputs for exactly this interpreter's batch size (copies, safe to keep)."""
        with self._lock:
            for name, index in self._inputs.items():
                self._it.set_tensor(index, inputs[name])
            self._it.invoke()
            return {key: self._it.get_tensor(index) for key, index in self._outputs}


def _forward(model: keras.Model) -> Callable[[Arrays], Arrays]:
    return lambda inputs: dict(model(inputs, training=False))


def _numpy_outputs(fn: Callable[[Arrays], Any]) -> Runner:
    return lambda inputs: {k: v.numpy() for k, v in fn(inputs).items()}


def convert_tflite(model: keras.Model, specs: dict[str, tf.TensorSpec], batch: int) -> LiteRunner:
    """Convert ``model`` at a fixed ``batch`` size to a TFLite interpreter.

    Raises:
        Exception: whatever the converter raises for layers it cannot convert.
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    fixed = {k: tf.TensorSpec((batch, *s.shape[1:]), s.dtype, name=k) for k, s in specs.items()}
    concrete = tf.function(_forward(model), input_signature=[fixed]).get_concrete_function()
    key_of = {t.name: k for k, t in concrete.structured_outputs.items()}
    keys = [key_of[t.name] for t in concrete.outputs]  # the converted model's output order
    frozen = convert_variables_to_constants_v2(concrete)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    return LiteRunner(converter.convert(), keys)


@dataclass
class Measured:
    """One batch size: median ms per usable variant, parity, why others were left out."""

    batch: int
    runtime: str = KERAS
    ms: dict[str, float] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)


def sample_inputs(specs: dict[str, tf.TensorSpec], n: int, seed: int = 0) -> Arrays:
    """A seeded test batch: integer inputs in 0..2 (padding, OOV, the first id: valid for
    every embedding), float inputs uniform in 0..3."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, spec in specs.items():
        shape, dtype = (n, *spec.shape[1:]), spec.dtype.as_numpy_dtype
        integer = spec.dtype.is_integer
        out[name] = (rng.integers(0, 3, shape) if integer else rng.uniform(0, 3, shape)).astype(
            dtype
        )
    return out


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _diff(a: Arrays, b: Arrays) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k]) - np.asarray(b[k])))) for k in b)


def measure(
    predictor: Predictor,
    batch: int,
    candidates: Sequence[str] = ("tflite",),
    repeats: int = 30,
) -> tuple[Measured, Runner | None]:
    """Time the Keras graph and each candidate at ``batch`` rows; pick the fastest match.

    Returns:
        The measurements and the winner's runner (``None`` when the Keras graph won).
    """
    specs = predictor.input_specs
    data = sample_inputs(specs, batch)
    graph = predictor._fn
    keras_out = {k: v.numpy() for k, v in graph(data).items()}
    result = Measured(batch=batch, ms={KERAS: _median_ms(lambda: graph(data), repeats)})
    runners: dict[str, Runner] = {}
    for name in candidates:
        try:
            if name == "tflite":
                runners[name] = convert_tflite(predictor.model, specs, batch)
            elif name == "xla":
                runners[name] = _numpy_outputs(
                    tf.function(
                        _forward(predictor.model), input_signature=[specs], jit_compile=True
                    )
                )
            else:
                raise ValueError(f"unknown runtime {name!r}; known: {RUNTIMES}")
            out = {k: np.asarray(v) for k, v in runners[name](data).items()}
        except Exception as exc:  # noqa: BLE001 - a variant that fails is left out
            result.left_out[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            runners.pop(name, None)
            continue
        result.max_abs_diff[name] = _diff(out, keras_out)
        if result.max_abs_diff[name] > TOLERANCE:
            result.left_out[name] = f"max abs diff {result.max_abs_diff[name]:.2e} > {TOLERANCE}"
            runners.pop(name)
            continue
        runner = runners[name]
        result.ms[name] = _median_ms(lambda runner=runner: runner(data), repeats)
    result.runtime = min(result.ms, key=result.ms.__getitem__)
    return result, runners.get(result.runtime)


class RuntimePredictor(Predictor):
    """A :class:`Predictor` that runs some padded batch sizes on another runtime (TFLite, XLA).

    Args:
        base: the Keras predictor; every other size runs through its (traced) ``tf.function``.
        runners: padded batch size -> the measured winner's runner for that size.
    """

    def __init__(self, base: Predictor, runners: dict[int, Runner]) -> None:
        # Shares base's model and traced function (no second trace, no second warm-up).
        self.model, self.input_specs, self._fn = base.model, base.input_specs, base._fn
        self._runners = runners

    def predict(self, inputs: Arrays) -> Arrays:
        """See :meth:`Predictor.predict` (same outputs within :data:`TOLERANCE`)."""
        arrays = self._check(inputs)
        rows = next(iter(arrays.values())).shape[0]
        size = bucket_size(rows) if 0 < rows <= BUCKETS[-1] else 0  # 0: no runner
        runner = self._runners.get(size)
        if runner is None:
            return super().predict(arrays)
        padded = {
            k: v
            if rows == size
            else np.concatenate([v, np.zeros((size - rows, *v.shape[1:]), v.dtype)])
            for k, v in arrays.items()
        }
        out = {k: v[:rows] for k, v in runner(padded).items()}
        for name in _FLAT_OUTPUTS:
            if name in out:
                out[name] = out[name].reshape(-1)
        return out


def select_runtime(
    predictor: Predictor,
    batches: Sequence[int] = (1, 8),
    candidates: Sequence[str] = ("tflite",),
    repeats: int = 30,
) -> tuple[Predictor, dict[str, Any]]:
    """Measure the variants at each padded size in ``batches``; return the predictor to serve.

    Returns:
        The predictor (a :class:`RuntimePredictor` when another variant won a size, else
        ``predictor``) and a summary for the bundle metadata and ``/model``:
        ``{"runtime": "tflite" | "xla" | "tf.function", "by_batch": {size: Measured}}``
        (``runtime`` is the first size's winner: batch 1, single-user requests).
    """
    won: dict[int, Runner] = {}
    measured = []
    for batch in batches:
        result, runner = measure(predictor, bucket_size(batch), candidates, repeats)
        measured.append(result)
        if runner is not None:
            won[result.batch] = runner
    summary = {
        "runtime": measured[0].runtime if measured else KERAS,
        "tolerance": TOLERANCE,
        "by_batch": {str(m.batch): asdict(m) for m in measured},
    }
    if not won:
        return predictor, summary
    return RuntimePredictor(predictor, won), summary
