"""Platform commands: ``interest bento import|build`` and ``interest serve``.

The path from the registry to a running service::

    interest bento import --alias champion   # registry version -> BentoML model store
    interest bento build                     # bentofile.yaml -> a bento embedding that model
    interest serve --port 3000               # bentoml serve serving.service:InterestService

BentoML reads ``BENTOML_HOME`` once per process, so ``import`` passes the configured home to
the store explicitly and ``build``/``serve`` run ``bentoml`` as a child with it in the env.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.config import ProjectConfig
from interest.common import config_from, echo_err, fail

REPO = Path(__file__).resolve().parents[1]
SERVICE = "serving.service:InterestService"
app = typer.Typer(help="BentoML packaging: import a registered model, build a bento.")


def bentoml_env(config: ProjectConfig, model_tag: str | None = None) -> dict[str, str]:
    """Environment for a ``bentoml`` child process: store, model, project config and paths."""
    paths = config.paths.resolved()
    env = {
        **os.environ,
        "BENTOML_HOME": str(paths.bentoml_home),
        "BENTOML_DO_NOT_TRACK": os.environ.get("BENTOML_DO_NOT_TRACK", "True"),
        # Absolute, so the service finds the same state whatever its working directory.
        "INTEREST_STATE_DIR": str(paths.state_dir),
        "INTEREST_BENTO_MODEL": model_tag or f"{config.serving.bento_model}:latest",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    if os.environ.get("INTEREST_CONFIG"):
        env["INTEREST_CONFIG"] = str(Path(os.environ["INTEREST_CONFIG"]).resolve())
    return env


def _with_config_file(ctx: typer.Context, env: dict[str, str]) -> dict[str, str]:
    path = (ctx.find_root().obj or {}).get("config_path")
    if path is not None:
        env["INTEREST_CONFIG"] = str(Path(path).resolve())
    return env


def bentoml_cli() -> str:
    """The ``bentoml`` executable next to this interpreter (falls back to ``PATH``)."""
    local = Path(sys.executable).parent / "bentoml"
    return str(local) if local.is_file() else "bentoml"


def import_model(
    ctx: typer.Context,
    alias: Annotated[str, typer.Option(help="Registry alias to import.")] = "champion",
    version: Annotated[
        str | None, typer.Option(help="Registry version number (wins over --alias).")
    ] = None,
) -> None:
    """Import a registered model version into the BentoML model store; print its tag."""
    from serving.registry_import import import_from_registry

    config = config_from(ctx)
    try:
        imported = import_from_registry(config, alias=alias, version=version)
    except (LookupError, ValueError) as err:
        raise fail(str(err)) from err
    labels = imported.labels
    echo_err(
        f"imported {labels['model_name']} v{labels['version']}"
        f"{' (' + labels['aliases'] + ')' if labels.get('aliases') else ''}"
        f" run {labels['run_id']} into {imported.home}"
    )
    typer.echo(imported.tag)
    echo_err("next: interest bento build   (or: interest serve --port 3000)")


def build(
    ctx: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="BentoML model tag to embed (default <name>:latest).")
    ] = None,
) -> None:
    """Run ``bentoml build`` on bentofile.yaml; the bento embeds the imported model."""
    config = config_from(ctx)
    env = _with_config_file(ctx, bentoml_env(config, model))
    echo_err(f"building {REPO / 'bentofile.yaml'} with model {env['INTEREST_BENTO_MODEL']}")
    out = subprocess.run(
        [bentoml_cli(), "build", "-o", "tag"], cwd=REPO, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise fail(f"bentoml build failed ({out.returncode}):\n{out.stderr[-3000:]}")
    tag = out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")
    typer.echo(tag)
    echo_err(
        f"next: BENTOML_HOME={env['BENTOML_HOME']} bentoml containerize {tag}"
        "   (or: interest serve --port 3000)"
    )


def serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 3000,
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    model: Annotated[
        str | None, typer.Option(help="BentoML model tag to serve (default <name>:latest).")
    ] = None,
) -> None:
    """Serve the imported model: ``bentoml serve serving.service:InterestService``.

    Replaces this process with ``bentoml serve`` (Ctrl-C stops it); readiness is
    ``GET /readyz``, predictions ``POST /predict`` and ``/predict_batch``.
    """
    config = config_from(ctx)
    env = _with_config_file(ctx, bentoml_env(config, model))
    argv = [bentoml_cli(), "serve", SERVICE, "--host", host, "--port", str(port)]
    echo_err(
        f"serving {env['INTEREST_BENTO_MODEL']} from {env['BENTOML_HOME']} on http://{host}:{port}"
    )
    echo_err(f"next: curl http://{host}:{port}/readyz && curl http://{host}:{port}/model")
    os.chdir(REPO)
    os.execvpe(argv[0], argv, env)


app.command("import")(import_model)
app.command("build")(build)
