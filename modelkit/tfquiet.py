"""TensorFlow's C++ log lines (absl), silenced at their source unless asked for.

TensorFlow 2.21 logs through a statically linked copy of absl. ``TF_CPP_MIN_LOG_LEVEL`` no
longer reaches it: loading ``libtensorflow_framework.so.2`` prints ``oneDNN custom
operations are on`` from a static initialiser (with absl's ``WARNING: All log messages
before absl::InitializeLog() ...``; the profiler plugin, which carries its own absl, repeats
both), and running a model prints ERROR lines such as ``E0000 ... oneDNN supports DT_BOOL
only on platforms with AVX-512`` (advisory: the op falls back to Eigen). So, before
TensorFlow is first imported, :func:`install` arranges that these libraries are loaded once
with file descriptor 2 captured (absl's lines dropped, anything else passed on) and then
absl's own ``SetMinLogLevel`` is called in the framework library: every later C++ line below
the level is dropped where it is made. Genuine failures still
raise Python exceptions. ``INTEREST_TF_LOGS=1`` (the CLI's ``--verbose``) leaves all as is.
"""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

ENV = "INTEREST_TF_LOGS"  # "1": keep TensorFlow's C++ lines
FRAMEWORK = "libtensorflow_framework.so.2"
#: Libraries with their own absl copy that log when loaded (the profiler plugin repeats the
#: oneDNN line); loaded here first, quietly, then reused by TensorFlow's own imports.
LIBRARIES = (FRAMEWORK, "python/profiler/internal/_pywrap_profiler_plugin.so")
#: absl::LogSeverityAtLeast: 0 info, 1 warning, 2 error, 3 fatal (only fatal lines remain).
FATAL = 3
#: absl's C++ line (``E0000 00:00:1796017882.974115   14063 port.cc:153] ...``) and its
#: notice about lines logged before ``absl::InitializeLog``.
ABSL_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ \S+:\d+\] .*"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
    rb"STDERR)\r?$"
)
# The mangled name carries absl's LTS version, which changes with TensorFlow releases.
_SET_MIN_LOG_LEVEL = re.compile(rb"_ZN4absl12lts_\d+14SetMinLogLevelENS0_18LogSeverityAtLeastE")


def drop_absl_lines(data: bytes) -> bytes:
    """``data`` without absl's C++ log lines."""
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if not ABSL_LINE.match(line.rstrip(b"\n")))


@contextmanager
def _captured_stderr() -> Iterator[None]:
    """Capture file descriptor 2 for the block; pass on what is not an absl line."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = drop_absl_lines(sink.read())
            if kept:
                os.write(2, kept)


def _set_min_log_level(library: Path, handle: ctypes.CDLL, level: int) -> bool:
    found = _SET_MIN_LOG_LEVEL.search(library.read_bytes())  # ~65 MB, read once
    if found is None:
        return False
    function = getattr(handle, found.group().decode())
    function.argtypes = [ctypes.c_int]
    function.restype = None
    function(level)
    return True


def silence_tensorflow(level: int = FATAL) -> bool:
    """Load TensorFlow's framework library quietly and set absl's minimum log level.

    Call it before ``import tensorflow`` (later it only sets the level). Returns whether
    the level was set (``False``: TensorFlow or the symbol was not found; nothing fails).
    """
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(list(spec.submodule_search_locations)[0])
    if not (root / FRAMEWORK).is_file():
        return False
    try:
        with _captured_stderr():
            # RTLD_LOCAL (the default): RTLD_GLOBAL makes TensorFlow crash later
            handles = {
                name: ctypes.CDLL(str(root / name)) for name in LIBRARIES if (root / name).is_file()
            }
        return _set_min_log_level(root / FRAMEWORK, handles[FRAMEWORK], level)
    except (OSError, AttributeError, ValueError):
        return False


class _BeforeTensorFlow(importlib.abc.MetaPathFinder):
    """Silences TensorFlow the first time ``tensorflow`` is looked up, then steps aside."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> None:
        if fullname == "tensorflow":
            sys.meta_path.remove(self)
            if os.environ.get(ENV) != "1":
                silence_tensorflow()
        return None  # the normal finders import it


def install() -> None:
    """Silence TensorFlow's C++ lines when it is first imported (unless ``INTEREST_TF_LOGS=1``).

    Costs nothing until TensorFlow is imported; a no-op when it already is.
    """
    if os.environ.get(ENV) == "1" or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _BeforeTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTensorFlow())
