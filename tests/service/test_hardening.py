"""Findings of the newcomer review, each a test that failed before its fix: overflowing
numbers, wrong-typed flags, secrets and paths in the public health body."""

from __future__ import annotations

import pytest

from mixllm.registry.messages import public_url, redact_url

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]

JSON = {"content-type": "application/json"}
CHAT = {"model": "mixllm", "messages": [{"role": "user", "content": "Which gas? A) O2 B) CO2"}]}


def test_an_integer_of_thousands_of_digits_is_a_400_not_a_hang(client) -> None:
    raw = b'{"query": "hi", "budget": ' + b"1" * 5000 + b"}"
    resp = client.post("/route", content=raw, headers=JSON)
    assert resp.status_code == 400
    assert "digits" in resp.json()["error"]["message"]


@pytest.mark.parametrize("field,value", [("seed", "1e400"), ("logit_bias", '{"1": -1e400}')])
def test_overflowing_numbers_are_not_finite(client, field, value) -> None:
    raw = (
        '{"model": "mixllm", "messages": [{"role": "user", "content": "hi"}], '
        f'"{field}": {value}}}'
    ).encode()
    resp = client.post("/v1/chat/completions", content=raw, headers=JSON)
    assert resp.status_code == 400
    message = resp.json()["error"]["message"]
    assert field in message and "not a finite number" in message


@pytest.mark.parametrize("value", ["yes", 1])
def test_stream_must_be_a_boolean(client, value) -> None:
    resp = client.post("/v1/chat/completions", json={**CHAT, "stream": value})
    assert resp.status_code == 400


def test_urls_lose_every_credential_form() -> None:
    assert redact_url("http://sekrit-token-123@127.0.0.1:9") == "http://***@127.0.0.1:9"
    assert "hunter2" not in redact_url("sqlite:////tmp/fb.db?password=hunter2")
    assert redact_url("postgresql://u:pw@db:5432/x") == "postgresql://***@db:5432/x"
    assert public_url("sqlite:////work/secret/dir/mlflow.db") == "sqlite:///…/mlflow.db"
    assert public_url("http://tok@10.0.0.1:5000/path?k=v") == "http://10.0.0.1:5000"


def test_public_health_shows_no_path_or_credential(client) -> None:
    body = client.get("/healthz").text
    assert "mlflow.db" in body  # the store is named ...
    for leak in ("/tmp/", "/work/", "password", "***@"):  # ... without its path or secrets
        assert leak not in body, leak


def test_an_llm_added_on_the_replay_backend_answers_as_checked(client) -> None:
    # review finding: the check accepted `model` (recorded) while replay answered by the
    # new LLM's name (no recordings): every chat it won was a 502
    from tests.service.test_app import chat_body
    from tests.tiny_data import STRONG, query

    new = {
        "name": "alias-of-strong",
        "input_price": 0.0,
        "output_price": 0.0,
        "backend": "replay",
        "model": STRONG,
    }
    assert client.post("/llms", json=new).status_code == 200
    try:
        body = {**chat_body(query("arc-challenge", 2)), "candidates": ["alias-of-strong"]}
        resp = client.post("/v1/chat/completions", json=body)
        assert resp.status_code == 200, resp.text
        assert resp.json()["model"] == "alias-of-strong"
    finally:
        client.delete("/llms/alias-of-strong")
