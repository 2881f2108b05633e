"""Platform commands: ``interest bento import|build`` and ``interest serve``.

The path from the registry to a running service::

    interest bento import --alias champion   # registry version -> BentoML model store
    interest bento build                     # bentofile.yaml -> a bento embedding that model
    interest serve --port 3000               # bentoml serve serving.service:InterestService

BentoML reads ``BENTOML_HOME`` once per process, so ``import`` passes the configured home to
the store explicitly and ``build``/``serve`` run ``bentoml`` as a child with it in the env.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from interest.common import config_from, echo_err, fail

app = typer.Typer(help="BentoML packaging: import a registered model, build a bento.")


def config_path_of(ctx: typer.Context) -> Path | None:
    """The global ``--config`` file, which ``bentoml`` children must read too."""
    return (ctx.find_root().obj or {}).get("config_path")


def import_model(
    ctx: typer.Context,
    alias: Annotated[str, typer.Option(help="Registry alias to import.")] = "champion",
    version: Annotated[
        str | None, typer.Option(help="Registry version number (wins over --alias).")
    ] = None,
) -> None:
    """Import a registered model version into the BentoML model store; print its tag."""
    config = config_from(ctx)
    # Lazy: MLflow and BentoML take seconds to import; `interest --help` should not wait.
    from serving.registry_import import import_from_registry

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
    # Deferred: serving.launch imports httpx; `interest --help` should not wait.
    from serving.launch import REPO
    from serving.package import BentoBuildError, bentoml_env, build_bento

    env = bentoml_env(config, model, config_path_of(ctx))
    echo_err(f"building {REPO / 'bentofile.yaml'} with model {env['INTEREST_BENTO_MODEL']}")
    try:
        tag = build_bento(config, model, config_path_of(ctx))
    except BentoBuildError as err:
        raise fail(str(err)) from err
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
    """Serve the imported model with bentoml serve (readiness GET /readyz).

    Runs `bentoml serve serving.service:InterestService` in this process.

    Ctrl-C stops it. Predictions: POST /predict, /predict_batch; the model: GET /model.
    """
    config = config_from(ctx)
    # Deferred: serving.launch imports httpx; `interest --help` should not wait.
    from serving.launch import REPO, SERVICE, bentoml_executable
    from serving.package import bentoml_env

    env = bentoml_env(config, model, config_path_of(ctx))
    argv = [bentoml_executable(), "serve", SERVICE, "--host", host, "--port", str(port)]
    echo_err(
        f"serving {env['INTEREST_BENTO_MODEL']} from {env['BENTOML_HOME']} on http://{host}:{port}"
    )
    echo_err(f"next: curl http://{host}:{port}/readyz && curl http://{host}:{port}/model")
    os.chdir(REPO)
    os.execvpe(argv[0], argv, env)


def deploy(
    ctx: typer.Context,
    version: Annotated[
        str | None, typer.Option(help="Registry version to deploy (default: the champion).")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="A running service to reload with it, e.g. http://127.0.0.1:3000."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deployment as JSON.")] = False,
) -> None:
    """Deploy a registry version: import, build the bento, record it, reload the service.

    The deployment record (version, bento, when, by whom) is written with the registry, so
    ``interest status`` and the service's ``/model`` can say whether the champion is served.
    """
    config = config_from(ctx)
    # Lazy: MLflow and BentoML take seconds to import; `interest --help` should not wait.
    from pipelines.deploy import deploy as run_deploy
    from serving.package import BentoBuildError

    try:
        done = run_deploy(
            config,
            "champion",
            version,
            url=url,
            config_path=config_path_of(ctx),
            command="interest deploy",
        )
    except (LookupError, BentoBuildError, RuntimeError) as err:
        raise fail(str(err)) from err
    record = done.record
    if as_json:
        typer.echo(json.dumps({**asdict(record), "served_version": done.served_version}))
        return
    typer.echo(
        f"deployed v{record.model_version} as bento {record.bento_tag} (model {record.model_tag})"
    )
    if url is None:
        echo_err(f"restart the service to serve it: interest serve --model {record.model_tag}")
    else:
        typer.echo(f"{url} now serves v{done.served_version}")


app.command("import")(import_model)
app.command("build")(build)
