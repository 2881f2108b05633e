"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from core.config import ProjectConfig, load_config


def config_from(ctx: typer.Context, overrides: dict[str, Any] | None = None) -> ProjectConfig:
    """Load the configuration named by the global ``--config`` option, plus CLI overrides.

    ``None`` values in ``overrides`` (options the user did not pass) are ignored.
    """
    path: Path | None = (ctx.find_root().obj or {}).get("config_path")
    clean = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in (overrides or {}).items()
    }
    return load_config(path, clean)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` to stderr and return an Exit to raise."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def echo_err(message: str) -> None:
    """Print a progress line to stderr (stdout stays machine-readable)."""
    print(message, file=sys.stderr, flush=True)
