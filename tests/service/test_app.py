"""Every endpoint of the in-process BentoML app (``MixLLMService.to_asgi()``) and every bad
input the issue lists, against a real champion in a temporary MLflow store."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mixllm.registry.feedback import FeedbackStore
from tests.tiny_data import LLMS, SPECIALISTS, STRONG, answer, query

pytestmark = pytest.mark.service

MBPP_LLM = SPECIALISTS["mbpp"]
ARC_LLM = SPECIALISTS["arc-challenge"]


def error_of(resp) -> str:
    """The OpenAI-style error message of a response."""
    body = resp.json()
    assert set(body) == {"error"}, body
    return body["error"]["message"]


def sse_events(text: str) -> list[dict]:
    """JSON payloads of a server-sent-event stream (without the [DONE] marker)."""
    payloads = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


@pytest.fixture(scope="module")
def store(service_env: dict[str, str]) -> FeedbackStore:
    """The feedback store the service writes to, opened on the same URL."""
    return FeedbackStore(service_env["MIXLLM_FEEDBACK_URL"])


# -- /route --------------------------------------------------------------------------------


def test_route_returns_the_decision(client, store) -> None:
    resp = client.post("/route", json={"query": query("mbpp", 4)})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["llm"] == MBPP_LLM
    assert body["router_version"] == "1"
    assert body["tags"] and all(isinstance(t, str) for t in body["tags"])
    assert body["decision_ms"] > 0
    assert {c["llm"] for c in body["candidates"]} == set(LLMS)
    for c in body["candidates"]:
        assert {"quality", "cost", "latency_s", "score", "uncertainty"} <= set(c)
    best = max(body["candidates"], key=lambda c: c["score"])
    assert best["llm"] == body["llm"]
    logged = store.get_decision(body["request_id"])
    assert logged is not None and logged.llm == MBPP_LLM and logged.router_version == "1"


def test_route_respects_candidates_and_budget(client) -> None:
    body = {"query": query("mbpp", 5), "candidates": [STRONG, ARC_LLM], "budget": 2.0}
    resp = client.post("/route", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["llm"] in (STRONG, ARC_LLM)
    assert {c["llm"] for c in out["candidates"]} == {STRONG, ARC_LLM}
    cheap = client.post("/route", json={"query": query("mbpp", 5), "budget_usd": 1e-7}).json()
    rich = client.post("/route", json={"query": query("mbpp", 5), "budget_usd": 1.0}).json()
    assert cheap["budget_usd"] < rich["budget_usd"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"query": ""}, "query is empty"),
        ({"query": "   \n "}, "query is empty"),
        ({"query": "x" * 20_001}, "limit is 20000"),
        ({"query": 5}, "query"),
        ({}, "query"),
        ({"query": "hi", "budget": "cheap"}, "budget"),
        ({"query": "hi", "budget": 0}, "budget"),
        ({"query": "hi", "budget": -0.5}, "budget"),
        ({"query": "hi", "budget": 11}, "budget"),
        ({"query": "hi", "budget": True}, "budget"),
        ({"query": "hi", "budget_usd": 0}, "budget_usd"),
        ({"query": "hi", "candidates": "gpt"}, "candidates"),
        ({"query": "hi", "candidates": []}, "candidates is empty"),
        ({"query": "hi", "candidates": [STRONG, STRONG]}, "duplicates"),
        ({"query": "hi", "candidates": ["no-such-llm"]}, "no-such-llm"),
        ({"query": "hi", "qurey": "typo"}, "qurey"),
    ],
)
def test_route_rejects_bad_input(client, body, needle) -> None:
    resp = client.post("/route", json=body)
    assert resp.status_code == 400, resp.text
    assert needle in error_of(resp)


@pytest.mark.parametrize("path", ["/route", "/feedback", "/llms", "/v1/chat/completions"])
def test_non_json_bodies_are_400(client, path) -> None:
    resp = client.post(path, content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400
    assert "not valid JSON" in error_of(resp)
    resp = client.post(path, json=["a", "list"])
    assert resp.status_code == 400
    assert "JSON object" in error_of(resp)


# -- /feedback -----------------------------------------------------------------------------


def test_feedback_round_trip_changes_a_later_decision(client, store) -> None:
    q = query("winogrande", 7)
    first = client.post("/route", json={"query": q}).json()
    before = store.count_feedback()
    resp = client.post("/feedback", json={"request_id": first["request_id"], "quality": 0.0})
    assert resp.status_code == 200, resp.text
    assert resp.json()["stored"] is True and resp.json()["applied"] is True
    assert store.count_feedback() == before + 1
    rows = store.feedback_since(None)
    mine = rows[rows["query"] == q]
    assert mine["llm"].tolist() == [first["llm"]] and mine["quality"].tolist() == [0.0]
    assert mine["router_version"].tolist() == ["1"]
    later = client.post("/route", json={"query": q}).json()
    score = {c["llm"]: c["quality"] for c in later["candidates"]}
    old = {c["llm"]: c["quality"] for c in first["candidates"]}
    assert score[first["llm"]] < old[first["llm"]]  # the online update lowered its estimate
    assert later["llm"] != first["llm"]


def test_thumbs_feedback_with_cost_and_latency(client, store) -> None:
    rid = client.post("/route", json={"query": query("arc-challenge", 11)}).json()["request_id"]
    resp = client.post(
        "/feedback", json={"request_id": rid, "thumbs_up": True, "cost": 0.001, "latency_s": 1.5}
    )
    assert resp.status_code == 200, resp.text
    rows = store.feedback_since(None)
    row = rows[rows["query"] == query("arc-challenge", 11)].iloc[-1]
    assert (row["quality"], row["cost"], row["latency_s"]) == (1.0, 0.001, 1.5)


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"request_id": "no-such-request", "quality": 1.0}, 404, "no-such-request"),
        ({"request_id": "{rid}", "quality": 1.5}, 400, "quality"),
        ({"request_id": "{rid}", "quality": -0.1}, 400, "quality"),
        ({"request_id": "{rid}"}, 400, "give quality"),
        ({"request_id": "{rid}", "quality": 1.0, "thumbs_up": True}, 400, "not both"),
        ({"request_id": "{rid}", "thumbs_up": "yes"}, 400, "thumbs_up"),
        ({"request_id": "{rid}", "quality": "good"}, 400, "quality"),
        ({"request_id": "{rid}", "quality": 1.0, "cost": -1}, 400, "cost"),
        ({"request_id": "{rid}", "quality": 1.0, "latency_s": -2}, 400, "latency_s"),
        ({"quality": 1.0}, 400, "request_id"),
        ({"request_id": 42, "quality": 1.0}, 400, "request_id"),
    ],
)
def test_feedback_rejects_bad_input(client, store, body, status, needle) -> None:
    rid = client.post("/route", json={"query": query("mbpp", 9)}).json()["request_id"]
    body = {k: (rid if v == "{rid}" else v) for k, v in body.items()}
    before = store.count_feedback()
    resp = client.post("/feedback", json=body)
    assert resp.status_code == status, resp.text
    assert needle in error_of(resp)
    assert store.count_feedback() == before  # nothing half-stored


def test_concurrent_feedback_is_never_lost(client, store) -> None:
    n = 40
    rids = [
        client.post("/route", json={"query": query("mbpp", i)}).json()["request_id"]
        for i in range(n)
    ]
    before = store.count_feedback()

    def post(rid: str) -> int:
        return client.post("/feedback", json={"request_id": rid, "thumbs_up": True}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(post, rids))
    assert statuses == [200] * n
    assert store.count_feedback() == before + n


# -- /llms ---------------------------------------------------------------------------------


def test_list_add_and_remove_llms(client) -> None:
    listed = client.get("/llms").json()
    assert {m["name"] for m in listed["llms"] if m["active"]} == set(LLMS)
    assert all(m["backend"] == "replay" for m in listed["llms"])

    new = {
        "name": "acme/new-llm",
        "input_price": 1e-7,
        "output_price": 1e-7,
        "prior_quality": 1.0,
        "backend": "up-ok",
    }
    resp = client.post("/llms", json=new)
    assert resp.status_code == 200, resp.text
    assert "acme/new-llm" in resp.json()["llms"]
    route = client.post("/route", json={"query": query("winogrande", 3)}).json()
    assert "acme/new-llm" in {c["llm"] for c in route["candidates"]}

    resp = client.delete("/llms/acme/new-llm")
    assert resp.status_code == 200, resp.text
    resp = client.post("/route", json={"query": "hi", "candidates": ["acme/new-llm"]})
    assert resp.status_code == 400 and "acme/new-llm" in error_of(resp)
    route = client.post("/route", json={"query": query("winogrande", 3)}).json()
    assert "acme/new-llm" not in {c["llm"] for c in route["candidates"]}
    listed = {m["name"]: m for m in client.get("/llms").json()["llms"]}
    assert listed["acme/new-llm"]["active"] is False


def test_removing_a_specialist_routes_around_it_until_it_is_back(client) -> None:
    q = query("mbpp", 8)
    assert client.post("/route", json={"query": q}).json()["llm"] == MBPP_LLM
    assert client.delete(f"/llms/{MBPP_LLM}").status_code == 200
    try:
        assert client.post("/route", json={"query": q}).json()["llm"] != MBPP_LLM
    finally:
        resp = client.post(
            "/llms", json={"name": MBPP_LLM, "input_price": 1.981e-07, "output_price": 1.973e-07}
        )
    assert resp.status_code == 200, resp.text
    assert client.post("/route", json={"query": q}).json()["llm"] == MBPP_LLM


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": STRONG, "input_price": 1e-6, "output_price": 1e-6}, "already a candidate"),
        ({"name": "x", "input_price": -1, "output_price": 1e-6}, "input_price"),
        ({"name": "x", "input_price": 1e-6}, "output_price"),
        ({"name": "", "input_price": 1e-6, "output_price": 1e-6}, "name"),
        ({"name": "x", "input_price": 1e-6, "output_price": 1e-6, "backend": "nope"}, "nope"),
        ({"name": "x", "input_price": "1", "output_price": 1e-6}, "input_price"),
    ],
)
def test_add_llm_rejects_bad_input(client, body, needle) -> None:
    resp = client.post("/llms", json=body)
    assert resp.status_code == 400, resp.text
    assert needle in error_of(resp)
    assert "x" not in {m["name"] for m in client.get("/llms").json()["llms"]}


def test_remove_unknown_llm_is_404(client) -> None:
    resp = client.delete("/llms/no/such-llm")
    assert resp.status_code == 404
    assert "no/such-llm" in error_of(resp)


# -- /v1/chat/completions --------------------------------------------------------------------


def chat_body(text: str, **extra) -> dict:
    return {"model": "mixllm", "messages": [{"role": "user", "content": text}], **extra}


def test_chat_answers_from_the_chosen_llms_recording(client) -> None:
    resp = client.post("/v1/chat/completions", json=chat_body(query("arc-challenge", 2)))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    completion = ChatCompletion.model_validate(body)  # the openai client's own model
    assert completion.model == ARC_LLM
    assert completion.choices[0].message.content == answer(ARC_LLM, "arc-challenge.2")
    routing = body["mixllm"]
    assert routing["backend"]["match"] == "exact"
    assert routing["recorded_quality"] == 1.0 and routing["cost_usd"] > 0
    assert completion.id == f"chatcmpl-{routing['request_id']}"


def test_chat_with_budget_and_nearest_match(client) -> None:
    text = "Write a python function to reverse a linked list of nodes."
    resp = client.post("/v1/chat/completions", json=chat_body(text, model="mixllm:0.05"))
    assert resp.status_code == 200, resp.text
    routing = resp.json()["mixllm"]
    assert routing["backend"]["match"] == "nearest"
    assert routing["backend"]["sample_id"].startswith("mbpp.")


def test_chat_streams_the_same_answer(client) -> None:
    resp = client.post("/v1/chat/completions", json=chat_body(query("mbpp", 1), stream=True))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/event-stream")
    events = sse_events(resp.text)
    chunks = [ChatCompletionChunk.model_validate(e) for e in events]
    assert {c.model for c in chunks} == {MBPP_LLM}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == answer(MBPP_LLM, "mbpp.1")
    assert events[0]["mixllm"]["request_id"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (chat_body("hi", model="gpt-4"), "model must be 'mixllm'"),
        (chat_body("hi", model="mixllm:abc"), "not a number"),
        (chat_body("hi", model="mixllm:0"), "budget"),
        (chat_body("hi", model="mixllm:11"), "budget"),
        ({"model": "mixllm", "messages": []}, "messages"),
        ({"model": "mixllm", "messages": "hi"}, "messages"),
        ({"model": "mixllm", "messages": [{"role": "system", "content": "x"}]}, "no user message"),
        ({"model": "mixllm", "messages": [{"role": "user", "content": "  "}]}, "no user message"),
        ({"model": "mixllm", "messages": [{"role": "wizard", "content": "x"}]}, "role"),
        (chat_body("x" * 20_001), "limit is 20000"),
        (chat_body("hi", candidates=["no-such-llm"]), "no-such-llm"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_chat_rejects_bad_input(client, body, needle) -> None:
    resp = client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 400, resp.text
    assert needle in error_of(resp)


def test_chat_forwards_to_an_openai_compatible_backend(client, upstream) -> None:
    spec = {
        "name": "acme/http-llm",
        "input_price": 1e-9,
        "output_price": 1e-9,
        "backend": "up-ok",
        "model": "served-name",
        "prior_quality": 1.0,
    }
    assert client.post("/llms", json=spec).status_code == 200
    try:
        body = chat_body("hello there", candidates=["acme/http-llm"], temperature=0.2)
        resp = client.post("/v1/chat/completions", json=body)
        assert resp.status_code == 200, resp.text
        completion = ChatCompletion.model_validate(resp.json())
        assert completion.model == "acme/http-llm"
        assert completion.choices[0].message.content == "upstream says hello: hello there"
        assert completion.usage.total_tokens == 12
        resp = client.post("/v1/chat/completions", json={**body, "stream": True})
        events = sse_events(resp.text)
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
        assert text == "upstream says hello!"
        assert {e["model"] for e in events} == {"acme/http-llm"}
    finally:
        client.delete("/llms/acme/http-llm")


@pytest.mark.parametrize(
    ("behaviour", "stream", "status", "logged"),
    [
        ("fail", False, 502, "HTTP 500"),
        ("fail", True, 502, "HTTP 500"),
        ("garbage", False, 502, "non-JSON"),
        ("slow", False, 504, "timed out"),
        ("slow", True, 504, "timed out"),
    ],
)
def test_backend_failures_are_502_or_504(
    client, upstream, caplog, behaviour, stream, status, logged
):
    name = f"acme/{behaviour}"
    spec = {"name": name, "input_price": 1e-9, "output_price": 1e-9, "backend": f"up-{behaviour}"}
    assert client.post("/llms", json=spec).status_code == 200
    try:
        body = chat_body("hello", candidates=[name], stream=stream)
        resp = client.post("/v1/chat/completions", json=body)
        assert resp.status_code == status, resp.text
        message = error_of(resp)
        # The caller gets a request id, never the backend's URL; the log has the details.
        assert "request_id" in message and upstream.url(behaviour) not in message
        assert str(upstream.port) not in message and "Error" not in message
        assert logged in caplog.text and upstream.url(behaviour) in caplog.text
        assert client.get("/healthz").json()["in_flight"].get(name, 0) == 0
    finally:
        client.delete(f"/llms/{name}")


# -- /healthz and /metrics -----------------------------------------------------------------


def test_healthz_reports_version_feedback_and_champion(client, store) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["router_version"] == "1"
    assert body["feedback_count"] == store.count_feedback()
    assert body["status"] == "ok" and body["champion"]["state"] == "ok"
    assert body["champion"]["error"] is None


def test_metrics_has_ours_next_to_bentomls(client) -> None:
    client.post("/route", json={"query": query("mbpp", 2)})
    client.post("/route", json={"query": ""})
    text = client.get("/metrics").text
    assert 'mixllm_requests_total{endpoint="/route",status="200"}' in text
    assert 'mixllm_requests_total{endpoint="/route",status="400"}' in text
    assert f'mixllm_decisions_total{{llm="{MBPP_LLM}"}}' in text
    assert "mixllm_decision_seconds_bucket" in text
    assert "# TYPE mixllm_feedback_rows gauge" in text
    assert 'mixllm_router_version{version="1"} 1' in text
    assert "bentoml_service_request" in text  # BentoML's own metrics are still there
    for line in text.splitlines():
        if line.startswith("mixllm_feedback_rows "):
            assert float(line.split()[1]) >= 0


def test_openapi_docs_list_our_endpoints(client) -> None:
    spec = client.get("/docs.json").json()
    for path in ("/route", "/feedback", "/v1/chat/completions", "/llms"):
        assert path in spec["paths"], sorted(spec["paths"])
