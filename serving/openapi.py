"""The OpenAPI document: product info, the one 4xx error shape, nullable fields kept.

BentoML 1.4 builds the spec in ``Service.openapi_spec`` from the service name, the bento's
README (a BentoML badge page when served from source) and the bento version (``None`` from
source), with no option to set them; :func:`document` wraps that property. It also
declares ``{"error", "detail"}`` for 400 (our answers are ``{"error", "field"}``:
:mod:`serving.errors`) and flattens ``str | None`` to ``string`` in the top-level request
and response schemas; :func:`fix_document` corrects both in the served JSON.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import attrs
from bentoml._internal.service.openapi.specification import OpenAPISpecification

from serving.schemas import ErrorBody

PRODUCT = "Interest Evolution API"
DESCRIPTION = """\
Forecasts how an e-commerce user's interests evolve, from their recent behaviour events.

* `POST /predict`: one user's events (before `cutoff`) -> the categories they will most
  likely engage with next, the probabilities of a purchase and of churn within the
  horizon, and the predicted interest mix per future period.
* `POST /predict_batch`: many users at once, answered in order.
* `GET /model`: the served model version, its test metrics and data contract, and whether
  the registry holds it as champion now.
* `/admin/*`: serve another stored model, or add a challenger in shadow, without a restart.

Every answer is recorded in the prediction log under its `request_id`; `/readyz` is 200
once the model is loaded and warmed.
"""


#: Every operation with a body can answer these with ``ErrorBody`` (:mod:`serving.limits`).
BODY_ERRORS = {
    "400": "Bad request: a field is invalid (named in `field`)",
    "413": "Body too large",
    "415": "Body is not application/json",
    "422": "Well-formed, but cannot be acted on",
    "503": "Overloaded, or the prediction log cannot be written; retry later",
}
ADMIN_ERRORS = {"404": "No such model in the store"}
_IO_SUFFIX = "IODescriptor"


def fix_document(doc: dict[str, Any]) -> dict[str, Any]:
    """Declare the error shape on every operation that takes a body; restore nullability.

    Args:
        doc: the OpenAPI document as BentoML serves it (changed in place).
    """
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for code in ("400", "404"):  # BentoML's {"error", "detail"} placeholders
                if code in responses and "$ref" in str(responses[code]):
                    del responses[code]
            codes = dict(BODY_ERRORS) if method in ("post", "put", "patch") else {}
            if path.startswith("/admin"):
                codes.update(ADMIN_ERRORS, **{"422": BODY_ERRORS["422"]})
            for code, text in codes.items():
                responses[code] = {"description": text, "content": error}
    for name, schema in schemas.items():
        model = schemas.get(name.removesuffix(_IO_SUFFIX)) if name.endswith(_IO_SUFFIX) else None
        if model and "properties" in model and "properties" in schema:
            # The plain component keeps pydantic's anyOf [.., null]; the IO copy lost it.
            schema["properties"] = model["properties"]
    _nullable(schemas)
    doc["openapi"] = "3.1.0"  # pydantic's schemas are JSON Schema 2020-12, as 3.1 expects
    return doc


def _nullable(node: Any) -> None:
    # anyOf [X, {"type": "null"}] becomes X with type [X's type, "null"] (OpenAPI 3.1):
    # fuzzers negate each anyOf branch alone and would call null invalid.
    if isinstance(node, list):
        for item in node:
            _nullable(item)
        return
    if not isinstance(node, dict):
        return
    for value in node.values():
        _nullable(value)
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1 and isinstance(rest[0].get("type"), str):
            del node["anyOf"]
            node.update(rest[0], type=[rest[0]["type"], "null"])


class FixedSpec(OpenAPISpecification):
    """BentoML's spec object whose served JSON goes through :func:`fix_document`."""

    __slots__ = ()

    def asdict(self) -> dict[str, Any]:
        """The OpenAPI document as served at ``/docs.json``."""
        return fix_document(super().asdict())


def package_version() -> str:
    """The installed ``interest-evolution`` version (``0+unknown`` when not installed)."""
    try:
        return importlib.metadata.version("interest-evolution")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def document(service: Any) -> None:
    """Give ``service`` (a ``bentoml.service`` object) the product's OpenAPI info."""
    base = type(service)

    class Documented(base):  # type: ignore[misc, valid-type]
        __slots__ = ()  # same layout as BentoML's slotted Service, so the class can change

        @property
        def openapi_spec(self) -> Any:
            spec = super().openapi_spec
            info = attrs.evolve(
                spec.info, title=PRODUCT, version=package_version(), description=DESCRIPTION
            )
            fixed = attrs.evolve(spec, info=info)
            object.__setattr__(fixed, "__class__", FixedSpec)
            return fixed

    service.__class__ = Documented
