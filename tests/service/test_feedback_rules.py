"""Feedback through the in-process app: one per request_id (a repeat is a 409 and moves
nothing), every number finite and bounded, and nothing non-finite in any later answer."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from mixllm.core.bounds import MAX_COST_USD, MAX_LATENCY_S
from mixllm.registry.feedback import FeedbackStore
from tests.tiny_data import SPECIALISTS, query

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def store(service_env: dict[str, str]) -> FeedbackStore:
    """The feedback store the service writes to, opened on the same URL."""
    return FeedbackStore(service_env["MIXLLM_FEEDBACK_URL"])


def strict_json(text: str) -> object:
    """Parse JSON refusing NaN and Infinity (what a strict client such as JS would do)."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-finite number {token} in a JSON response")

    return json.loads(text, parse_constant=refuse)


def predicted(client, q: str, llm: str) -> float:
    body = client.post("/route", json={"query": q}).json()
    return next(c["quality"] for c in body["candidates"] if c["llm"] == llm)


def test_repeated_feedback_is_a_409_and_is_applied_once(client, store) -> None:
    q = query("winogrande", 3)
    first = client.post("/route", json={"query": q}).json()
    llm, rid = first["llm"], first["request_id"]
    before = store.count_feedback()
    body = {"request_id": rid, "thumbs_up": False}
    resp = client.post("/feedback", json=body)
    assert resp.status_code == 200, resp.text
    after_one = predicted(client, q, llm)
    assert after_one < next(c["quality"] for c in first["candidates"] if c["llm"] == llm)
    for _ in range(2):
        again = client.post("/feedback", json=body)
        assert again.status_code == 409, again.text
        error = again.json()["error"]
        assert error["type"] == "conflict_error"
        assert rid in error["message"] and "already has feedback" in error["message"]
    assert store.count_feedback() == before + 1
    assert predicted(client, q, llm) == pytest.approx(after_one, abs=1e-12)


def test_racing_repeats_store_exactly_one(client, store) -> None:
    rid = client.post("/route", json={"query": query("mbpp", 13)}).json()["request_id"]
    before = store.count_feedback()

    def post(_: int) -> int:
        return client.post("/feedback", json={"request_id": rid, "quality": 0.5}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(post, range(8)))
    assert statuses == [200] + [409] * 7
    assert store.count_feedback() == before + 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cost", 1e308),
        ("cost", MAX_COST_USD * 1.01),
        ("latency_s", 1e300),
        ("latency_s", MAX_LATENCY_S + 1),
        ("cost", float("inf")),
        ("latency_s", float("nan")),
        ("quality", float("nan")),
    ],
)
def test_out_of_range_numbers_are_400_naming_the_field(client, store, field, value) -> None:
    rid = client.post("/route", json={"query": query("mbpp", 17)}).json()["request_id"]
    body = {"request_id": rid, "quality": 1.0, field: value}
    before = store.count_feedback()
    # json.dumps writes NaN / Infinity tokens, which Python's JSON parser on the server reads.
    resp = client.post(
        "/feedback", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]["message"]
    assert store.count_feedback() == before


def test_extreme_but_valid_feedback_keeps_every_answer_finite(client) -> None:
    for i, llm in enumerate(SPECIALISTS.values()):
        rid = client.post(
            "/route", json={"query": query("arc-challenge", 20 + i), "candidates": [llm]}
        ).json()["request_id"]
        resp = client.post(
            "/feedback",
            json={
                "request_id": rid,
                "quality": 1.0,
                "cost": MAX_COST_USD,
                "latency_s": MAX_LATENCY_S,
            },
        )
        assert resp.status_code == 200, resp.text
    chat = client.post(
        "/v1/chat/completions",
        json={"model": "mixllm", "messages": [{"role": "user", "content": query("mbpp", 2)}]},
    )
    assert chat.status_code == 200, chat.text
    strict_json(chat.text)
    strict_json(client.post("/route", json={"query": query("arc-challenge", 5)}).text)
    strict_json(client.get("/healthz").text)
