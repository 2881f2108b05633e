"""A no-op BentoML service with the same request model: the framework's floor for ``/predict``.

``bentoml serve benchmarks.noop_service:NoopService``: BentoML parses and validates the
body with :class:`serving.schemas.PredictRequest`, then answers a small dict. What
``benchmarks/serving.py`` measures here is the cost of HTTP + BentoML + pydantic alone.
"""

from __future__ import annotations

from typing import Any

import bentoml

from serving.schemas import PredictRequest


@bentoml.service(name="noop")
class NoopService:
    """Validates the request, does nothing else."""

    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, **request: Any) -> dict[str, Any]:
        """Answer how many events were sent."""
        return {"events": len(request["events"])}
