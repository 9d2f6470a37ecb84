"""Issue #9, security: no request-controlled egress, only answerable candidates, API keys with
two roles, anonymous feedback refused, keys never logged, error bodies without internals."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixllm.core.errors import ConfigError
from mixllm.serving.auth import ApiKeys, is_loopback, parse_keys, require_keys
from mixllm.serving.backends import load_backends_config
from tests.stores import patched_env
from tests.tiny_data import query

pytestmark = [pytest.mark.service, pytest.mark.timeout(180)]

ROUTE_KEY = "route-key-" + "r" * 24
ADMIN_KEY = "admin-key-" + "a" * 24
ROUTE = {"Authorization": f"Bearer {ROUTE_KEY}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture(scope="module")
def keyed(mlflow_uri: str, router_dir: Path, service_env: dict[str, str]) -> Iterator:
    """The in-process app with API keys configured (one route key, one admin key)."""
    from starlette.testclient import TestClient

    from flows.service import MixLLMService
    from tests.service._registry import register_router
    from tests.service.conftest import _forget_bentoml_metrics

    register_router(router_dir)
    keys = {"MIXLLM_API_KEYS": f"route:{ROUTE_KEY},admin:{ADMIN_KEY}"}
    try:
        with (
            patched_env(keys),
            TestClient(MixLLMService.to_asgi(), raise_server_exceptions=False) as client,
        ):
            yield client
    finally:
        _forget_bentoml_metrics()


def error_of(resp) -> dict:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


def active(client) -> set[str]:
    return {m["name"] for m in client.get("/llms", headers=ROUTE).json()["llms"] if m["active"]}


# -- no request-controlled egress ----------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"base_url": "http://attacker.example/v1", "api_key_env": "AWS_SECRET_ACCESS_KEY"},
        {"base_url": "file:///etc/passwd"},
        {"api_key_env": "PATH", "backend": "up-ok"},
        {"timeout_s": 1.0, "backend": "up-ok"},
    ],
)
def test_a_request_cannot_name_where_to_connect_or_which_secret(keyed, extra) -> None:
    body = {"name": "acme/exfil", "input_price": 0, "output_price": 0, **extra}
    resp = keyed.post("/llms", json=body, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    assert "backends.yaml" in error_of(resp)["message"]
    assert "acme/exfil" not in active(keyed)


@pytest.mark.parametrize(
    ("backend", "needle"),
    [
        ("replay", "no recorded answers"),  # zero-price, nothing recorded: would win and 502
        ("up-closed", "not reachable"),
        ("up-nokey", "no API key"),
        ("nowhere", "unknown backend"),
    ],
)
def test_only_answerable_candidates_are_added(keyed, backend, needle) -> None:
    body = {"name": "acme/free", "input_price": 0, "output_price": 0, "backend": backend}
    resp = keyed.post("/llms", json=body, headers=ADMIN)
    assert resp.status_code == 400, resp.text
    assert needle in error_of(resp)["message"]
    assert "acme/free" not in active(keyed)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/v1", "http:///v1"])
def test_backends_file_refuses_non_http_urls(tmp_path, url) -> None:
    path = tmp_path / "backends.yaml"
    path.write_text(
        f"default_backend: x\nbackends: [{{name: x, kind: openai, base_url: '{url}'}}]\n"
    )
    with pytest.raises(ConfigError, match="http"):
        load_backends_config(path)


# -- authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/route", {"query": "hi"}),
        ("POST", "/v1/chat/completions", {"model": "mixllm", "messages": []}),
        ("GET", "/v1/models", None),
        ("POST", "/feedback", {"request_id": "x", "quality": 0}),
        ("GET", "/llms", None),
        ("POST", "/llms", {"name": "x", "input_price": 0, "output_price": 0}),
        ("DELETE", "/llms/gpt-4-1106-preview", None),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-key-000000000000"}])
def test_no_valid_key_is_401_in_openai_shape(keyed, method, path, body, headers) -> None:
    resp = keyed.request(method, path, json=body, headers=headers)
    assert resp.status_code == 401, resp.text
    assert error_of(resp)["type"] == "authentication_error"
    assert resp.headers["www-authenticate"] == "Bearer"


def test_route_key_routes_but_cannot_change_candidates(keyed) -> None:
    assert keyed.post("/route", json={"query": query("mbpp", 1)}, headers=ROUTE).status_code == 200
    assert keyed.get("/v1/models", headers=ROUTE).status_code == 200
    body = {"name": "acme/new", "input_price": 1e-7, "output_price": 1e-7, "backend": "up-ok"}
    resp = keyed.post("/llms", json=body, headers=ROUTE)
    assert resp.status_code == 403 and error_of(resp)["type"] == "permission_error"
    resp = keyed.delete("/llms/gpt-4-1106-preview", headers=ROUTE)
    assert resp.status_code == 403
    resp = keyed.post("/llms", json=body, headers=ADMIN)
    assert resp.status_code == 200, resp.text
    assert keyed.delete("/llms/acme/new", headers=ADMIN).status_code == 200


def test_probes_metrics_and_docs_need_no_key(keyed) -> None:
    for path in ("/healthz", "/livez", "/metrics", "/docs.json"):
        assert keyed.get(path).status_code == 200, path


def test_anonymous_feedback_cannot_steer_routing(keyed) -> None:
    queries = [
        query(task, i) for task in ("mbpp", "arc-challenge", "winogrande") for i in range(10)
    ]

    def shares() -> tuple[Counter, list[str]]:
        out = [keyed.post("/route", json={"query": q}, headers=ROUTE).json() for q in queries]
        return Counter(d["llm"] for d in out), [d["request_id"] for d in out]

    before, ids = shares()
    target = before.most_common(1)[0][0]
    statuses = set()
    for request_id in ids[:5] * 5:  # 25 posts, the same request ids again and again
        bad = {"request_id": request_id, "quality": 0.0, "cost": 1e6}
        statuses.add(keyed.post("/feedback", json=bad).status_code)
    assert statuses == {401}
    after, _ = shares()
    assert after[target] == before[target] and after == before


def test_keys_never_reach_the_log(keyed, caplog) -> None:
    caplog.set_level("DEBUG")
    keyed.post("/route", json={"query": "hi"}, headers=ROUTE)
    keyed.post("/route", json={"query": "hi"}, headers={"Authorization": "Bearer guessed-1234567"})
    keyed.post("/llms", json={}, headers=ROUTE)
    assert ROUTE_KEY not in caplog.text and "guessed-1234567" not in caplog.text


def test_unknown_paths_and_methods_are_openai_errors(keyed) -> None:
    resp = keyed.get("/no/such/path", headers=ROUTE)
    assert resp.status_code == 404 and error_of(resp)["type"] == "not_found_error"
    resp = keyed.put("/route", json={"query": "x"}, headers=ROUTE)
    assert resp.status_code == 405 and error_of(resp)


# -- key configuration and the bind check (no server) --------------------------------------


def test_role_of_matches_only_whole_keys() -> None:
    keys = ApiKeys(parse_keys(f"route:{ROUTE_KEY}, admin:{ADMIN_KEY}"))
    assert keys.role_of(ROUTE_KEY) == "route" and keys.role_of(ADMIN_KEY) == "admin"
    assert keys.role_of(ROUTE_KEY[:-1]) is None and keys.role_of("") is None
    assert ROUTE_KEY not in repr(keys.keys)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("route:tiny-secret", "shorter"),
        (f"root:{ROUTE_KEY}", "unknown role"),
        (ROUTE_KEY, "role:token"),
    ],
)
def test_bad_key_configuration_is_refused_without_echoing_it(text, needle) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        parse_keys(text)
    assert ROUTE_KEY not in str(info.value) and "tiny-secret" not in str(info.value)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_non_loopback_needs_keys(host, loopback) -> None:
    assert is_loopback(host) is loopback
    require_keys(host, ApiKeys(parse_keys(f"admin:{ADMIN_KEY}")))  # with keys: anywhere
    if loopback:
        require_keys(host, ApiKeys())
    else:
        with pytest.raises(ConfigError, match="without API keys"):
            require_keys(host, ApiKeys())


def test_bind_host_reads_bentoml_serve_options() -> None:
    from flows.service import bind_host

    assert bind_host(["bentoml", "serve", "x", "--host", "0.0.0.0"]) == "0.0.0.0"
    assert bind_host(["bentoml", "serve", "x", "--host=10.1.1.1"]) == "10.1.1.1"
    # click applies the LAST --host: a loopback one before it must not hide it
    assert bind_host(["bentoml", "serve", "x", "--host", "127.0.0.1", "--host", "0.0.0.0"]) == (
        "0.0.0.0"
    )
    with patched_env({}, unset=["BENTOML_HOST"]):
        assert bind_host(["bentoml", "serve", "x"]) == "127.0.0.1"
    with patched_env({"BENTOML_HOST": "0.0.0.0"}):
        assert bind_host(["bentoml", "serve", "x"]) == "0.0.0.0"


def test_mixllm_serve_refuses_a_public_host_without_keys() -> None:
    from typer.testing import CliRunner

    from flows.cli import app

    with patched_env({}, unset=["MIXLLM_API_KEYS", "MIXLLM_API_KEYS_FILE"]):
        result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 2, result.output
    assert "without API keys" in result.output
