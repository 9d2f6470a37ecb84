"""Issue #9, conversations and context windows: a follow-up is routed with the turns before
it (a bounded window), and a prompt never goes to an LLM whose context window it exceeds;
the decision says why a candidate was left out."""

from __future__ import annotations

import pytest

from mixllm.core.prices import LLMSpec, PriceTable, load_prices
from mixllm.routing.context import fit_context
from mixllm.serving.requests import CONVERSATION_CHARS, ChatRequest, chat_query
from tests.tiny_data import SPECIALISTS, STRONG, query

pytestmark = [pytest.mark.service, pytest.mark.timeout(180)]

MBPP_LLM = SPECIALISTS["mbpp"]
FOLLOW_UP = "Looks good, go ahead and finish it."


def coding_chat() -> list[dict]:
    return [
        {"role": "user", "content": query("mbpp", 7)},
        {"role": "assistant", "content": "def f(xs):\n    # first draft\n    return xs"},
        {"role": "user", "content": FOLLOW_UP},
    ]


def test_packaged_prices_know_every_context_window() -> None:
    prices = load_prices()
    assert all(spec.context_window for spec in prices.values())
    assert prices["gpt-4-1106-preview"].context_window == 128_000
    assert prices["mistralai/mistral-7b-chat"].context_window == 8_192
    assert prices["meta/llama-2-70b-chat"].context_window == 4_096


def test_fit_context_excludes_what_does_not_fit_and_says_why() -> None:
    prices = PriceTable(
        [
            LLMSpec(name="small", input_price=0, output_price=0, context_window=4096),
            LLMSpec(name="big", input_price=0, output_price=0, context_window=128_000),
            LLMSpec(name="unknown", input_price=0, output_price=0),
        ]
    )
    allowed, why = fit_context(prices, 4000, ["small", "big", "unknown"], answer_tokens=200)
    assert allowed == ["big", "unknown"]
    assert set(why) == {"small"} and "4000 prompt + 200 answer" in why["small"]
    assert "4096" in why["small"]
    assert fit_context(prices, 4000, ["small"])[0] == ["small"]
    fallback = PriceTable(
        [LLMSpec(name="unknown", input_price=0, output_price=0, context_window=10)]
    )
    assert fit_context(prices, 11, ["unknown"], fallback=fallback)[0] == []


def test_the_conversation_window_is_bounded() -> None:
    long_turn = "z" * (5 * CONVERSATION_CHARS)
    req = ChatRequest.model_validate(
        {
            "model": "mixllm",
            "messages": [
                {"role": "system", "content": "SYSTEM"},
                *[{"role": "user", "content": f"old {i}"} for i in range(10)],
                {"role": "assistant", "content": long_turn},
                {"role": "user", "content": FOLLOW_UP},
            ],
        }
    )
    text = chat_query(req)
    assert text.endswith(FOLLOW_UP) and "SYSTEM" not in text and "old 0" not in text
    assert len(text) <= CONVERSATION_CHARS + len(FOLLOW_UP) + 2


def test_a_follow_up_is_routed_with_its_conversation(client) -> None:
    alone = client.post("/route", json={"query": FOLLOW_UP}).json()["llm"]
    body = {"model": "mixllm", "messages": coding_chat()}
    resp = client.post("/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == MBPP_LLM
    assert alone != MBPP_LLM  # the follow-up on its own reads as something else


def test_a_long_conversation_never_goes_to_a_small_window(client) -> None:
    history = "The quick brown fox jumps over the lazy dog near the river bank. " * 40 + "\n"
    messages = [{"role": "user", "content": history}] * 200  # ~126k tokens
    messages = [*messages, {"role": "user", "content": query("mbpp", 7)}]
    resp = client.post("/v1/chat/completions", json={"model": "mixllm", "messages": messages})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["model"] == STRONG  # the only candidate with a 128k window
    excluded = out["mixllm"]["excluded"]
    assert MBPP_LLM in excluded and "context window" in excluded[MBPP_LLM]
    assert STRONG not in excluded


def test_max_tokens_counts_against_the_window(client) -> None:
    prompt = "word " * 3000
    resp = client.post(
        "/v1/chat/completions",
        json={
            "model": "mixllm",
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 6000,
            "candidates": [MBPP_LLM],
        },
    )
    assert resp.status_code == 400, resp.text
    assert "context window" in resp.json()["error"]["message"]


def test_route_reports_excluded_candidates(client) -> None:
    resp = client.post("/route", json={"query": query("mbpp", 1)})
    assert resp.status_code == 200 and resp.json()["excluded"] == {}
