"""Issue #9, bad input: every body and text entry point refuses invalid Unicode (the one
policy: reject, naming where), bad JSON, deep nesting, oversize bodies and non-finite
numbers with a 400/413 in OpenAI's error shape; one request's bad text never fails another
batched with it; OpenAI parameters are honoured or refused on every backend."""

from __future__ import annotations

import json
from concurrent.futures import Future

import pytest
from openai.types.chat import ChatCompletion

from mixllm.serving.concurrency import EncodeBatcher, _EncodeJob
from tests.tiny_data import SPECIALISTS, STRONG, query

pytestmark = [pytest.mark.service, pytest.mark.timeout(180)]

MBPP_LLM = SPECIALISTS["mbpp"]
JSON = {"content-type": "application/json"}


def error_of(resp) -> str:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]["message"]


def chat(text: str, **extra) -> dict:
    return {"model": "mixllm", "messages": [{"role": "user", "content": text}], **extra}


def healthy(client) -> None:
    resp = client.post("/route", json={"query": query("mbpp", 3)})
    assert resp.status_code == 200, resp.text


# -- invalid Unicode, raw bytes, deep nesting, size ----------------------------------------


@pytest.mark.parametrize(
    ("path", "raw", "needle"),
    [
        ("/route", b'{"query": "hi \\ud83d there"}', "query: not valid Unicode"),
        ("/route", b'{"query": "ok", "candidates": ["\\udc80"]}', "candidates.0"),
        ("/feedback", b'{"request_id": "\\ud800", "quality": 1}', "request_id"),
        (
            "/v1/chat/completions",
            b'{"model": "mixllm", "messages": [{"role": "user", "content": "a\\ud83d"}]}',
            "messages.0.content",
        ),
        ("/route", b'{"query": "caf\xe9 \xff"}', "not valid UTF-8"),
        ("/v1/chat/completions", b"\xff\xfe{", "not valid UTF-8"),
        ("/route", b'{"query": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper"),
        ("/route", b'{"query": ' + b"[" * 40 + b"]" * 40 + b"}", "nested deeper"),
        ("/route", b'{"query": "x", "budget": NaN}', "not a finite number"),
        ("/route", b'{"query": "x", "budget_usd": Infinity}', "not a finite number"),
        ("/feedback", b'{"request_id": "x", "quality": NaN}', "not a finite number"),
        ("/route", b'{"query": "x"', "not valid JSON"),
    ],
)
def test_bad_bytes_are_a_400_naming_the_problem(client, path, raw, needle) -> None:
    resp = client.post(path, content=raw, headers=JSON)
    assert resp.status_code == 400, resp.text
    assert needle in error_of(resp)
    healthy(client)


def test_oversize_body_is_413(client, monkeypatch) -> None:
    monkeypatch.setenv("MIXLLM_MAX_BODY_BYTES", "1000")
    resp = client.post("/route", json={"query": "x" * 2000})
    assert resp.status_code == 413 and "limit of 1000 bytes" in error_of(resp)
    healthy(client)


def test_whole_conversation_has_a_size_limit(client, monkeypatch) -> None:
    monkeypatch.setenv("MIXLLM_MAX_PROMPT_CHARS", "5000")
    body = chat("short question")
    body["messages"] = [{"role": "user", "content": "y" * 3000}] * 2 + body["messages"]
    resp = client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 413 and "limit is 5000" in error_of(resp)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"query": "x", "budget": 0.5, "budget_usd": 0.01}, "not both"),
        ({"query": "x", "budget": -1}, "budget"),
        ({"query": "x", "budget_usd": 1e9}, "budget_usd"),
    ],
)
def test_route_refuses_conflicting_or_out_of_range_numbers(client, body, needle) -> None:
    resp = client.post("/route", json=body)
    assert resp.status_code == 400 and needle in error_of(resp)


def test_one_bad_text_never_fails_its_batch(client) -> None:
    """150 bad texts beside 300 good ones, in the same encoder batches: every good one
    is embedded, only the bad ones fail (each with its own error)."""
    router = _served_router()
    batcher = EncodeBatcher(max_batch=32)
    jobs = []
    for i in range(450):
        text = f"bad {i} \ud83d" if i % 3 == 2 else query("mbpp", i % 40) + f" #{i}"
        jobs.append(_EncodeJob(router, text, Future()))
    for start in range(0, len(jobs), 32):
        batcher._process(jobs[start : start + 32])
    good = [j for j in jobs if "\ud83d" not in j.text]
    bad = [j for j in jobs if "\ud83d" in j.text]
    assert len(good) == 300 and len(bad) == 150
    assert all(j.future.exception() is None for j in good)
    assert all(j.future.exception() is not None for j in bad)


def _served_router():
    """The router the in-process service serves (the same MLflow champion, loaded here)."""
    from mixllm.registry import stores as registry

    version = registry.current_alias_version(registry.MODEL_NAME, registry.CHAMPION)
    return registry.load_version(registry.MODEL_NAME, version)[0]


def test_cli_route_refuses_invalid_unicode(router_dir) -> None:
    from typer.testing import CliRunner

    from mixllm.tools.cli import app

    # A raw byte that is not UTF-8 in argv reaches Python as a lone surrogate (surrogateescape).
    arg = b"caf\xe9".decode("utf-8", "surrogateescape")
    result = CliRunner().invoke(app, ["route", arg, "--router", str(router_dir)])
    assert result.exit_code == 2, result.output
    assert "not valid Unicode" in result.output


# -- OpenAI parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({"n": 0}, "n"),
        ({"n": 1.5}, "n"),
        ({"n": "two"}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 5, "max_completion_tokens": 5}, "not both"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": ""}, "stop"),
        ({"stream_options": {"include_usage": True}}, "stream: true"),
        ({"response_format": {"type": "yaml"}}, "response_format"),
        ({"temperature": 7}, "temperature"),
        ({"n": 2}, "n must be 1"),  # replay cannot: refused, not ignored
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "cannot call tools"),
        ({"response_format": {"type": "json_object"}}, "plain text"),
    ],
)
def test_openai_parameters_are_refused_when_not_honoured(client, extra, needle) -> None:
    resp = client.post("/v1/chat/completions", json=chat(query("mbpp", 2), **extra))
    assert resp.status_code == 400, resp.text
    assert needle in error_of(resp)


def test_replay_honours_max_tokens_and_stop(client) -> None:
    full = client.post("/v1/chat/completions", json=chat(query("mbpp", 2))).json()
    text = full["choices"][0]["message"]["content"]
    short = client.post("/v1/chat/completions", json=chat(query("mbpp", 2), max_tokens=3)).json()
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] <= 3 < full["usage"]["completion_tokens"]
    assert text.startswith(short["choices"][0]["message"]["content"])
    cut = client.post("/v1/chat/completions", json=chat(query("mbpp", 2), stop=["answer"])).json()
    assert cut["choices"][0]["message"]["content"] == text[: text.index("answer")]


@pytest.mark.parametrize("backend", ["replay", "up-ok"])
def test_include_usage_ends_the_stream_with_usage(client, backend) -> None:
    llm = MBPP_LLM
    if backend != "replay":
        llm = "acme/usage"
        spec = {"name": llm, "input_price": 1e-9, "output_price": 1e-9, "backend": backend}
        assert client.post("/llms", json=spec).status_code == 200
    try:
        body = chat(query("mbpp", 2), stream=True, stream_options={"include_usage": True})
        resp = client.post("/v1/chat/completions", json={**body, "candidates": [llm]})
        assert resp.status_code == 200, resp.text
        events = [
            json.loads(line[5:]) for line in resp.text.splitlines() if line.startswith("data: {")
        ]
        last = events[-1]
        assert last["choices"] == [] and last["usage"]["completion_tokens"] > 0
        assert last["usage"]["total_tokens"] == sum(
            last["usage"][k] for k in ("prompt_tokens", "completion_tokens")
        )
        assert all("usage" in e for e in events)  # null until the last chunk, as OpenAI
        if backend != "replay":  # stream_options went upstream: the upstream's own usage
            assert (
                last["usage"]["prompt_tokens"] == 7
                and len([e for e in events if e.get("usage")]) == 1
            )
    finally:
        if backend != "replay":
            client.delete(f"/llms/{llm}")


def test_openai_backend_gets_the_parameters(client, upstream) -> None:
    spec = {"name": "acme/params", "input_price": 1e-9, "output_price": 1e-9, "backend": "up-ok"}
    assert client.post("/llms", json=spec).status_code == 200
    try:
        body = chat("hi", candidates=["acme/params"], n=2, tools=[{"type": "function"}])
        resp = client.post("/v1/chat/completions", json=body)
        assert resp.status_code == 200, resp.text
        ChatCompletion.model_validate(resp.json())
    finally:
        client.delete("/llms/acme/params")


def test_models_lists_routable_names(client) -> None:
    resp = client.get("/v1/models")
    assert resp.status_code == 200, resp.text
    ids = [m["id"] for m in resp.json()["data"]]
    assert ids[0] == "mixllm" and STRONG in ids and MBPP_LLM in ids
    assert all(m["object"] == "model" for m in resp.json()["data"])


def test_bad_queries_beside_good_ones_over_http(client) -> None:
    """The issue's case: 150 lone-surrogate queries among 300 innocent ones, concurrently.
    Every innocent request is answered, every bad one is a 400, the service stays up."""
    from concurrent.futures import ThreadPoolExecutor

    bad = b'{"query": "tell me \\ud83d more"}'

    def send(i: int) -> tuple[bool, int]:
        if i % 3 == 2:
            return False, client.post("/route", content=bad, headers=JSON).status_code
        good = {"query": query("mbpp", i % 40) + f" (variant {i})"}
        return True, client.post("/route", json=good).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(send, range(450)))
    assert [s for ok, s in results if ok] == [200] * 300
    assert [s for ok, s in results if not ok] == [400] * 150
    healthy(client)
