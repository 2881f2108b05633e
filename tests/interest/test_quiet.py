"""Library log noise is off by default and back with ``--verbose``."""

from __future__ import annotations

import logging
import os

import optuna
import pytest

from interest.common import apply_global_options, quiet_libraries

NOISY = ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_LOGGING_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")


class _Ctx:
    def __init__(self, verbose: bool) -> None:
        self.obj = {"verbose": verbose}

    def find_root(self) -> _Ctx:
        return self


@pytest.mark.parametrize("verbose", [False, True])
def test_global_options_set_library_levels(verbose: bool, monkeypatch: pytest.MonkeyPatch):
    for name in NOISY:
        monkeypatch.delenv(name, raising=False)
    apply_global_options(verbose=verbose, debug=False)
    quiet_libraries(_Ctx(verbose))  # type: ignore[arg-type]
    assert all((name in os.environ) is not verbose for name in NOISY)
    expected = logging.INFO if verbose else logging.WARNING
    assert optuna.logging.get_verbosity() == expected
