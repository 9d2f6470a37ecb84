"""OpenAI shapes: model names with budgets, responses and chunks the openai client accepts."""

from __future__ import annotations

import json

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mixllm.core.errors import InvalidRequestError
from mixllm.serving.backends import BackendReply
from mixllm.serving.openai_compat import (
    SSE_DONE,
    ChatCompletionRequest,
    build_response,
    chunk,
    parse_model,
    sse,
)

pytestmark = pytest.mark.service


@pytest.mark.parametrize(
    ("model", "pct"),
    [("mixllm", None), ("mixllm:0.25", 25.0), ("mixllm:1", 100.0), (" mixllm:2.5 ", 250.0)],
)
def test_parse_model(model: str, pct: float | None) -> None:
    assert parse_model(model) == pct


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ("gpt-4", "must be 'mixllm'"),
        ("mixllm:", "not a number"),
        ("mixllm:cheap", "not a number"),
        ("mixllm:0", r"\(0, 10\]"),
        ("mixllm:-0.5", r"\(0, 10\]"),
        ("mixllm:nan", r"\(0, 10\]"),
        ("mixllm:inf", r"\(0, 10\]"),
        ("mixllm:10.5", r"\(0, 10\]"),
    ],
)
def test_parse_model_rejects(model: str, needle: str) -> None:
    with pytest.raises(InvalidRequestError, match=needle):
        parse_model(model)


def test_request_keeps_unknown_openai_parameters_for_the_backend() -> None:
    req = ChatCompletionRequest.model_validate(
        {
            "model": "mixllm:0.5",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [{"type": "text", "text": "part one"}]},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "the question"},
            ],
            "temperature": 0.3,
            "max_tokens": 20,
            "stream": True,
        }
    )
    assert req.query() == "the question"
    body = req.forward_body()
    assert body["temperature"] == 0.3 and body["max_tokens"] == 20
    assert "model" not in body and "stream" not in body
    assert len(body["messages"]) == 4


def test_response_is_an_openai_chat_completion_naming_the_llm() -> None:
    reply = BackendReply(text="42", prompt_tokens=3, completion_tokens=1, latency_s=0.1)
    out = build_response(reply, llm="claude-v2", request_id="abc", mixllm={"request_id": "abc"})
    parsed = ChatCompletion.model_validate(out)
    assert parsed.model == "claude-v2" and parsed.id == "chatcmpl-abc"
    assert parsed.choices[0].message.content == "42"
    assert parsed.usage.total_tokens == 4
    assert parsed.model_extra["mixllm"] == {"request_id": "abc"}


def test_backend_body_passes_through_with_our_labels() -> None:
    raw = {
        "id": "upstream-id",
        "object": "chat.completion",
        "created": 1,
        "model": "served-name",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "system_fingerprint": "fp_1",
    }
    reply = BackendReply(text="hi", prompt_tokens=1, completion_tokens=1, latency_s=0, raw=raw)
    out = build_response(reply, llm="acme/llm", request_id="r", mixllm={})
    assert out["model"] == "acme/llm" and out["id"] == "chatcmpl-r"
    assert out["system_fingerprint"] == "fp_1" and out["usage"]["total_tokens"] == 2
    ChatCompletion.model_validate(out)


def test_chunks_are_openai_chunks_and_sse_framed() -> None:
    piece = {"choices": [{"index": 0, "delta": {"content": "he"}}]}
    first = chunk(piece, llm="m", request_id="r", created=5, mixllm={"request_id": "r"})
    parsed = ChatCompletionChunk.model_validate(first)
    assert parsed.model == "m" and parsed.choices[0].delta.content == "he"
    frame = sse(first)
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert json.loads(frame[6:]) == first
    assert SSE_DONE == b"data: [DONE]\n\n"
