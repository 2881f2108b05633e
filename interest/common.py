"""Helpers shared by the CLI command modules: typed options, config loading, quiet logs.

Every user error is translated here into one line on stderr and exit status 2 (bad usage):
option values are checked by the option types below before a command starts, and
:func:`config_from` turns configuration errors (file or CLI override) into a line naming the
file or the option. The global ``--debug`` flag re-raises instead, for a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from core.config import ConfigError, DataFormat, Period, ProjectConfig, load_config

#: Set by the global ``--debug`` flag: :func:`fail` re-raises instead of printing one line.
_debug = False

#: Exit status of bad usage (click's own, and :data:`interest.exit_codes.EXIT_CODES`).
USAGE = 2


def _is_duration(text: str) -> bool:
    from core.periods import duration_ns  # deferred (pandas): --help must stay fast

    try:
        duration_ns(text)  # the parser the pipelines use
    except ValueError:
        return False
    return True


def check_duration(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Option callback: ``value`` must be a positive duration such as ``3D`` or ``24h``."""
    if value is not None and not _is_duration(value):
        raise typer.BadParameter(f"{value!r} is not a positive duration such as 3D, 24h or 7d")
    return value


def check_time(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Option callback: ``value`` must be an ISO date or time such as ``2017-12-01T00:00``."""
    if value is None:
        return None
    import pandas as pd

    try:
        pd.Timestamp(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or time such as 2017-12-01 or 2017-12-01T12:00"
        ) from None
    return value


#: ``--format``: one checked choice of :data:`core.config.DataFormat` in every command.
FormatOption = Annotated[
    DataFormat | None, typer.Option("--format", "-f", help="Source layout (default: data.format).")
]
#: ``--period``: a checked choice of :data:`core.config.Period`.
PeriodOption = Annotated[
    Period | None, typer.Option(help="Trajectory period (default: features.period).")
]
#: ``--horizon``: a positive pandas duration, checked before the command starts.
HorizonOption = Annotated[
    str | None, typer.Option(help="Label window, e.g. 3D.", callback=check_duration)
]
#: ``--test-cutoff``: an ISO time, checked before the command starts.
TestCutoffOption = Annotated[
    str | None, typer.Option(help="Test cutoff (UTC ISO).", callback=check_time)
]


def _option_name(ctx: typer.Context, field: str, names: dict[str, str]) -> str | None:
    """The ``--flag`` of the option that set config ``field`` (``None`` if no option did)."""
    if field in names:
        return names[field]
    for param in ctx.command.params:
        if param.name == field and param.param_type_name == "option":
            return max(param.opts, key=len)
    return None


def config_from(
    ctx: typer.Context,
    overrides: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
) -> ProjectConfig:
    """Load the configuration named by the global ``--config`` option, plus CLI overrides.

    ``None`` values in ``overrides`` (options the user did not pass) are ignored. An invalid
    file or override ends the command with one line on stderr and exit status 2.

    Args:
        ctx: the command's context.
        overrides: ``{section: {field: value}}`` from the command's options.
        names: field -> option flag where they differ (``{"timeout_s": "--timeout"}``);
            by default an override is reported as the option of the field's name.
    """
    settings = ctx.find_root().obj or {}
    path: Path | None = settings.get("config_path")
    clean = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in (overrides or {}).items()
    }
    try:
        return load_config(path, clean)
    except ConfigError as err:
        field = (err.key or "").rpartition(".")[2]
        option = _option_name(ctx, field, names or {}) if err.source is None else None
        message = f"{option}: {err.detail}" if option and err.key else str(err)
        raise fail(message, USAGE) from err


def quiet_libraries(ctx: typer.Context) -> None:
    """Silence Optuna's INFO lines and absl's, unless the global ``--verbose`` was given.

    Call it after the command has imported Optuna/TensorFlow (their loggers are configured
    on import). TensorFlow's C++ lines are silenced earlier, by the root callback.
    """
    level = logging.INFO if (ctx.find_root().obj or {}).get("verbose") else logging.WARNING
    if "optuna" in sys.modules:
        import optuna

        optuna.logging.set_verbosity(level)
    if "absl.logging" in sys.modules:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(
            absl_logging.INFO if level == logging.INFO else absl_logging.ERROR
        )


def apply_global_options(verbose: bool, debug: bool) -> None:
    """Before any heavy import: TensorFlow's C++ log level, Python's root logger, ``--debug``."""
    global _debug
    _debug = debug
    from modelkit.tfquiet import ENV, install  # stdlib only: --help stays fast

    if verbose:  # children (bentoml serve, trial workers) keep TensorFlow's C++ lines too
        os.environ[ENV] = "1"
    else:  # setdefault: what the user exported wins
        install()  # TensorFlow's C++ (absl) lines, silenced at their source when it loads
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")  # read when MLflow loads
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr and return an Exit to raise.

    Called while handling an exception under the global ``--debug``, it re-raises that
    exception instead, for its traceback.
    """
    if _debug and sys.exc_info()[1] is not None:
        raise  # noqa: PLE0704 - re-raises the exception being handled by the caller
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def echo_err(message: str) -> None:
    """Print a progress line to stderr (stdout stays machine-readable)."""
    print(message, file=sys.stderr, flush=True)
