"""The OpenAPI page's title, version and description (BentoML fills in ``interest:dev``).

BentoML 1.4 builds the spec in ``Service.openapi_spec`` from the service name, the bento's
README (a BentoML badge page when served from source) and the bento version (``None`` from
source), with no option to set them; :func:`document` wraps that property.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import attrs

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
            return attrs.evolve(spec, info=info)

    service.__class__ = Documented
