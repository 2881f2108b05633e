"""The OpenAPI page names the product, its version and a request example that works."""

from __future__ import annotations

import pytest

from serving.schemas import PredictRequest


def test_request_example_events_precede_cutoff() -> None:
    example = PredictRequest.model_json_schema()["example"]
    request = PredictRequest.model_validate(example)
    assert request.cutoff is not None
    assert all(event.timestamp < request.cutoff for event in request.events)


@pytest.mark.slow
def test_openapi_info_names_the_product(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    from serving.openapi import DESCRIPTION, PRODUCT, package_version
    from serving.service import InterestService

    spec = InterestService.openapi_spec.asdict()
    assert spec["info"]["title"] == PRODUCT
    assert spec["info"]["version"] == package_version() != "None"
    assert spec["info"]["description"] == DESCRIPTION
    assert "/predict" in spec["paths"]
    body = spec["components"]["schemas"]["PredictRequest"]
    assert body["example"]["cutoff"] > body["example"]["events"][-1]["timestamp"]


def test_fix_document_declares_the_error_shape_and_keeps_null() -> None:
    from serving.openapi import BODY_ERRORS, fix_document

    doc = {
        "openapi": "3.0.2",
        "paths": {
            "/predict": {
                "post": {
                    "responses": {
                        "200": {},
                        "400": {"$ref": "#/components/schemas/InvalidArgument"},
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "PredictRequestIODescriptor": {"properties": {"top_k": {"type": "integer"}}},
                "PredictRequest": {
                    "properties": {"top_k": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}
                },
            }
        },
    }
    fixed = fix_document(doc)
    responses = fixed["paths"]["/predict"]["post"]["responses"]
    assert set(BODY_ERRORS) <= set(responses)
    schema = responses["400"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(fixed["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "field"}
    top_k = fixed["components"]["schemas"]["PredictRequestIODescriptor"]["properties"]["top_k"]
    assert top_k == {"type": ["integer", "null"]}
