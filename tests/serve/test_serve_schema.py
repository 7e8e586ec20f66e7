"""A schemathesis run against ``fer serve``'s OpenAPI schema: whatever it sends, no 5xx.

Every operation of the schema (``POST /predict`` and ``POST /annotate`` with multipart and raw
image bodies, their query parameters, ``GET /health``) gets requests generated from the schema
(valid ones, and with ``negative`` ones that break it: wrong types, missing bodies) sent
through the ASGI app in-process; the check is schemathesis' ``not_a_server_error``. A small,
derandomised example budget keeps it to seconds.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

OPERATIONS = [("/predict", "POST"), ("/annotate", "POST"), ("/health", "GET")]


@pytest.fixture(scope="module")
def api_schema(tiny_model_path, tiny_model):
    from fer_features.serve import create_app

    app = create_app(tiny_model_path, model=tiny_model)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def test_the_schema_lists_the_operations(api_schema):
    listed = {(path, method.upper()) for path in api_schema for method in api_schema[path]}
    assert set(OPERATIONS) <= listed


@pytest.mark.parametrize(
    "path, method, mode",
    # GET /health has no parameters or body, so no request breaks its schema: no negative cases
    [(p, m, g) for p, m in OPERATIONS for g in GenerationMode if not (p == "/health" and g is GenerationMode.NEGATIVE)],
    ids=str,
)
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_request_makes_a_server_error(api_schema, path, method, mode, data):
    case = data.draw(api_schema[path][method].as_strategy(generation_mode=mode))
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
