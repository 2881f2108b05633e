"""Package the service: the ``bentoml`` environment for this project and ``bentoml build``.

BentoML reads ``BENTOML_HOME`` once per process, so building and serving run ``bentoml`` as
a child with the configured home, model tag and project state in its environment.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from core.config import ProjectConfig
from serving.launch import REPO, bentoml_executable


class BentoBuildError(RuntimeError):
    """``bentoml build`` failed; the message holds the tail of its output."""


def bentoml_env(
    config: ProjectConfig, model_tag: str | None = None, config_path: Path | None = None
) -> dict[str, str]:
    """Environment for a ``bentoml`` child process: store, model, project config and paths.

    Args:
        config: project configuration (``paths``, ``serving.bento_model``).
        model_tag: BentoML model tag to serve or embed (default ``<bento_model>:latest``).
        config_path: the project config file the child must read too (default: the
            ``INTEREST_CONFIG`` of this process, if any).
    """
    paths = config.paths.resolved()
    env = {
        **os.environ,
        "BENTOML_HOME": str(paths.bentoml_home),
        "BENTOML_DO_NOT_TRACK": os.environ.get("BENTOML_DO_NOT_TRACK", "True"),
        # Absolute, so the service finds the same state whatever its working directory.
        "INTEREST_STATE_DIR": str(paths.state_dir),
        "INTEREST_TRACKING_URI": paths.tracking_uri,
        "INTEREST_BENTO_MODEL": model_tag or f"{config.serving.bento_model}:latest",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    path = config_path or (
        Path(os.environ["INTEREST_CONFIG"]) if "INTEREST_CONFIG" in os.environ else None
    )
    if path is not None:
        env["INTEREST_CONFIG"] = str(Path(path).resolve())
    return env


def build_bento(
    config: ProjectConfig, model_tag: str | None = None, config_path: Path | None = None
) -> str:
    """Run ``bentoml build`` on ``bentofile.yaml`` embedding ``model_tag``; return the bento tag.

    Raises:
        BentoBuildError: the build failed (exit status and output tail in the message).
    """
    env = bentoml_env(config, model_tag, config_path)
    out = subprocess.run(
        [bentoml_executable(), "build", "-o", "tag"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise BentoBuildError(f"bentoml build failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
