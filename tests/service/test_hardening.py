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


# -- the shared online state (review findings on the state store) ---------------------------
ROUTER_KEY = "mixllm:router:mixllm-router:v1"
OVERRIDES_KEY = "mixllm:service:overrides"


def _docs():
    import os

    from mixllm.serving.shared_state import open_docs

    return open_docs(os.environ["MIXLLM_STATE_URL"])


def _write_raw(key: str, text: str) -> None:
    """Store ``text`` under ``key`` as a foreign writer would (no checks), version + 1."""
    from sqlalchemy import text as sql

    docs = _docs()
    docs.create(key, {})
    with docs.engine.begin() as conn:
        conn.execute(
            sql("UPDATE mixllm_state SET doc = :d, version = version + 1 WHERE key = :k"),
            {"d": text, "k": key},
        )


def _route(client):
    return client.post("/route", json={"query": "Which gas? A) O2 B) CO2"})


def test_a_vanished_router_state_is_reseeded_with_the_overrides(client, caplog) -> None:
    from tests.tiny_data import SPECIALISTS

    gone = next(iter(SPECIALISTS.values()))
    spec = next(x for x in client.get("/llms").json()["llms"] if x["name"] == gone)
    assert client.delete(f"/llms/{gone}").status_code == 200
    try:
        _docs().delete(ROUTER_KEY)  # Redis restarted without persistence, FLUSHALL, ...
        resp = _route(client)
        assert resp.status_code == 200, resp.text
        assert gone not in resp.json()["candidates"]  # the service-wide removal re-applied
        assert "re-seeded" in caplog.text
        assert client.get("/readyz").status_code == 200
    finally:
        back = {k: spec[k] for k in ("name", "input_price", "output_price")}
        client.post("/llms", json={**back, "backend": "replay"})


@pytest.mark.parametrize(
    "raw", ['{"format_version": 1, "hello": "foreign"}', '{"format_version": 2}', "{not json"]
)
def test_a_corrupted_router_state_is_a_503_and_health_names_it(client, raw) -> None:
    docs = _docs()
    good = docs.get(ROUTER_KEY)[1]
    _write_raw(ROUTER_KEY, raw)
    try:
        resp = _route(client)
        assert resp.status_code == 503, resp.text  # the server's data, never a client's 400
        health = client.get("/healthz")  # its JSON, naming the problem (503: cannot serve)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert ROUTER_KEY in health.json()["state_store"]["error"]
        assert client.get("/readyz").status_code == 503
    finally:
        version = docs.version(ROUTER_KEY)
        assert docs.swap(ROUTER_KEY, version, good)
    assert _route(client).status_code == 200


@pytest.mark.parametrize("raw", ["[1, 2, 3]", '{"added": {"x": {"name": 5}}, "removed": []}'])
def test_a_malformed_overrides_document_is_a_503_and_never_rewritten(client, raw) -> None:
    from tests.service.test_app import chat_body
    from tests.tiny_data import STRONG, query

    docs = _docs()
    before = docs.get(OVERRIDES_KEY)
    _write_raw(OVERRIDES_KEY, raw)
    version = docs.version(OVERRIDES_KEY)
    try:
        assert client.get("/llms").status_code == 503
        chat = client.post("/v1/chat/completions", json=chat_body(query("arc-challenge", 1)))
        assert chat.status_code == 503, chat.text
        assert client.delete(f"/llms/{STRONG}").status_code == 503
        assert docs.version(OVERRIDES_KEY) == version  # not rewritten with the bad entry
        assert OVERRIDES_KEY in client.get("/healthz").json()["state_store"]["error"]
    finally:
        docs.delete(OVERRIDES_KEY)
        if before is not None:
            docs.create(OVERRIDES_KEY, before[1], before[0])
    assert client.get("/llms").status_code == 200


def test_the_loser_of_two_concurrent_deletes_gets_404(client, monkeypatch) -> None:
    # another worker or replica removes the LLM between this worker's check and its write
    from mixllm.routing import online
    from mixllm.routing.shared_state import SharedStateStore
    from mixllm.serving.candidate_admin import CandidateAdmin
    from tests.tiny_data import SPECIALISTS

    name = list(SPECIALISTS.values())[1]
    spec = next(x for x in client.get("/llms").json()["llms"] if x["name"] == name)
    SharedStateStore(_docs(), ROUTER_KEY).transact(lambda s: online.remove_candidate(s, name))
    monkeypatch.setattr(CandidateAdmin, "_check_removable", staticmethod(lambda r, n: None))
    try:
        resp = client.delete(f"/llms/{name}")
        assert resp.status_code == 404, resp.text
        assert name in _docs().get(OVERRIDES_KEY)[1]["removed"]  # recorded first
    finally:
        monkeypatch.undo()
        back = {k: spec[k] for k in ("name", "input_price", "output_price")}
        client.post("/llms", json={**back, "backend": "replay"})


@pytest.mark.parametrize(
    "url,says",
    [
        ("reddis://127.0.0.1:6379/0", "not one mixllm can open"),
        ("foo", "not one mixllm can open"),
        ("redis://127.0.0.1:6379/abc", "not a number"),
        ("redis://nobody:hunter2@127.0.0.1:6379/0", "cannot reach"),
    ],
)
def test_serve_refuses_a_bad_state_url_in_one_line(monkeypatch, capsys, url, says) -> None:
    import typer

    from flows.service_cli import check_state_store

    monkeypatch.setenv("MIXLLM_STATE_URL", url)
    with pytest.raises(typer.Exit) as exit_:
        check_state_store()
    assert exit_.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: MIXLLM_STATE_URL") and err.count("\n") == 1, err
    assert says in err and "hunter2" not in err
