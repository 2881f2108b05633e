"""The Kubernetes manifests in deploy/: valid against the pinned Kubernetes schemas (offline,
strict: unknown fields fail) and in agreement with the service they run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
#: The Kubernetes version the manifests are validated against (kubernetes-validate schemas).
KUBERNETES_VERSION = "1.33.0"


def _documents() -> list[tuple[str, dict]]:
    docs = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


def _find(kind: str, name: str) -> dict:
    found = [d for _, d in _documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name} in deploy/, found {len(found)}"
    return found[0]


def test_every_manifest_is_valid_for_the_pinned_kubernetes_version() -> None:
    import kubernetes_validate

    docs = _documents()
    kinds = {d["kind"] for _, d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "StatefulSet"} <= kinds
    for label, doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            pytest.fail(f"{label}: {err.message} at {'/'.join(map(str, err.path))}")


def test_validation_catches_a_broken_manifest() -> None:
    import kubernetes_validate

    doc = _find("Deployment", "interest-service")
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = [1]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = yaml.safe_load(yaml.safe_dump(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_service_probes_ports_and_scraping_agree_with_the_service() -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer

    from serving.limits import OPEN_PATHS

    port = BentoMLContainer.http.port.get()  # what `bentoml serve` and the image listen on
    assert port == 3000
    deployment = _find("Deployment", "interest-service")
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": port}
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    # Probes and scraping must not need the bearer token (serving.auth_token).
    assert {"/readyz", "/livez", "/metrics"} <= set(OPEN_PATHS)
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    env = {e["name"]: e for e in container["env"]}
    assert env["INTEREST_TRACKING_URI"]["value"] == "http://mlflow:5000"
    labels = pod["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()

    service = _find("Service", "interest-service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["port"] for p in service["spec"]["ports"]] == [port]
    hpa = _find("HorizontalPodAutoscaler", "interest-service")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "interest-service"
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


def test_mlflow_reaches_postgres_through_the_secret() -> None:
    mlflow = _find("Deployment", "mlflow")
    (container,) = mlflow["spec"]["template"]["spec"]["containers"]
    uri = next(a for a in container["args"] if a.startswith("--backend-store-uri="))
    assert uri.startswith("--backend-store-uri=postgresql://") and "@postgres:5432/" in uri
    secrets = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert secrets == {"mlflow-postgres"}
    service = _find("Service", "mlflow")
    assert service["spec"]["ports"][0]["port"] == 5000
    postgres = _find("StatefulSet", "postgres")
    assert postgres["spec"]["serviceName"] == _find("Service", "postgres")["metadata"]["name"]
