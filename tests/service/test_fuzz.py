"""Issue #9: a bounded fuzz run of the service from its own OpenAPI document (schemathesis):
every operation, generated valid and invalid inputs, zero 5xx and zero responses that break
the document (status codes, content types, bodies). The app runs for real: the BentoML app
(`MixLLMService.to_asgi()`, lifespan included) under uvicorn on a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.servers import free_port

pytestmark = [pytest.mark.service, pytest.mark.slow]

MAX_EXAMPLES = 30  # per operation: bounded, ~1-2 minutes for the whole document


@pytest.fixture(scope="module")
def served_app(mlflow_uri: str, router_dir: Path, service_env: dict[str, str]) -> Iterator[str]:
    """The service over real HTTP on 127.0.0.1 (no keys: loopback); its base URL."""
    import uvicorn

    from flows.service import MixLLMService
    from tests.service._registry import register_router
    from tests.service.conftest import _forget_bentoml_metrics

    register_router(router_dir)
    port = free_port()
    config = uvicorn.Config(
        MixLLMService.to_asgi(), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        _forget_bentoml_metrics()


@pytest.fixture(scope="module")
def api_schema(served_app: str):
    """The service API's own OpenAPI 3.1 document, as served at /openapi.json (BentoML's
    /docs.json labels the same schemas OpenAPI 3.0.2, which they are not)."""
    return schemathesis.openapi.from_url(f"{served_app}/openapi.json")


# What the run checks: no 5xx, and every response as the document says (status code
# documented, content type, body schema, headers); a request the document calls invalid
# must be refused. Not checked: that every schema-valid request is accepted
# (positive_data_acceptance): validity also depends on state the document cannot express
# (an LLM name that is a candidate, a request id that was routed).
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.negative_data_rejection,
]


def fuzz(operation, mode: GenerationMode) -> str | None:
    """Run up to ``MAX_EXAMPLES`` generated cases of one operation; its failure, if any."""

    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure reproduces
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded time
    )
    def run(case) -> None:
        case.call_and_validate(checks=CHECKS)

    try:
        run()
    except Unsatisfiable:  # nothing invalid to send (an operation without inputs)
        return None
    except BaseException as exc:
        return f"{operation.label} ({mode.value}): {str(exc)[:1500]}"
    return None


# pytest-timeout bounds the whole run; MAX_EXAMPLES bounds each operation.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(api_schema, mode) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    failures = [f for f in (fuzz(op, mode) for op in operations) if f]
    assert not failures, "\n\n".join(failures)
