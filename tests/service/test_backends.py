"""Backends: replay from recorded RouterBench answers, OpenAI-compatible HTTP against a real
upstream server, and the YAML registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mixllm.core.errors import BackendError, BackendTimeoutError, ConfigError, InvalidRequestError
from mixllm.serving.backends import (
    BackendRegistry,
    OpenAIBackend,
    ReplayBackend,
    load_backends_config,
)
from tests.service._upstream import UPSTREAM_TEXT
from tests.tiny_data import LLMS, STRONG, answer, query

pytestmark = pytest.mark.service


def body(text: str) -> dict:
    return {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    }


def stream_all(backend, llm: str, model: str, request: dict):
    """Open a stream and read it to the end in one event loop: (stream, chunks)."""

    async def run():
        stream = await backend.open_stream(llm, model, request)
        return stream, [chunk async for chunk in stream.chunks]

    return asyncio.run(run())


@pytest.fixture(scope="module")
def replay(tiny_csv: Path) -> ReplayBackend:
    return ReplayBackend("replay", tiny_csv)


def test_replay_exact_match_returns_the_recording(replay: ReplayBackend) -> None:
    assert replay.llms() == LLMS
    reply = asyncio.run(replay.complete(STRONG, STRONG, body(query("winogrande", 4))))
    assert reply.text == answer(STRONG, "winogrande.4")
    assert reply.detail["match"] == "exact" and reply.detail["sample_id"] == "winogrande.4"
    assert reply.quality == 1.0 and reply.cost_usd > 0
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0


def test_replay_matches_the_whole_prompt_too(replay: ReplayBackend) -> None:
    text = query("mbpp", 12)
    reply = asyncio.run(replay.complete(STRONG, STRONG, body("  " + text.upper() + "\n")))
    assert reply.detail["match"] == "exact"  # whitespace and case do not matter


def test_replay_falls_back_to_the_nearest_query(replay: ReplayBackend) -> None:
    text = "Write a python function that can sort a list of integers quickly"
    reply = asyncio.run(replay.complete(LLMS[1], LLMS[1], body(text)))
    assert reply.detail["match"] == "nearest"
    assert 0 < reply.detail["similarity"] < 1
    assert reply.detail["sample_id"].startswith("mbpp.")
    assert reply.text.startswith(f"[{LLMS[1]}]")


def test_replay_unknown_llm_is_a_backend_error(replay: ReplayBackend) -> None:
    with pytest.raises(BackendError, match="no recorded answers for LLM 'acme/x'"):
        asyncio.run(replay.complete("acme/x", "acme/x", body("hi")))


def test_replay_streams_the_recording_in_pieces(replay: ReplayBackend) -> None:
    stream, chunks = stream_all(replay, STRONG, STRONG, body(query("mbpp", 2)))
    assert len(chunks) > 3
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == answer(STRONG, "mbpp.2")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert stream.quality is not None


def test_openai_backend_forwards_and_streams(upstream) -> None:
    backend = OpenAIBackend("up", upstream.url("ok"), timeout_s=5)
    reply = asyncio.run(backend.complete("acme/llm", "served-name", body("ping")))
    assert reply.text == f"{UPSTREAM_TEXT}: ping"
    assert reply.raw["model"] == "served-name"  # the backend got its own model id
    assert (reply.prompt_tokens, reply.completion_tokens) == (7, 5)
    _, chunks = stream_all(backend, "acme/llm", "served-name", body("ping"))
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        == "upstream says hello!"
    )


@pytest.mark.parametrize(
    ("behaviour", "error", "needle"),
    [
        ("fail", BackendError, "HTTP 500: .*upstream exploded"),
        ("garbage", BackendError, "non-JSON"),
        ("slow", BackendTimeoutError, "timed out after 0.5s"),
    ],
)
def test_openai_backend_errors(upstream, behaviour, error, needle) -> None:
    backend = OpenAIBackend("up", upstream.url(behaviour), timeout_s=0.5)
    with pytest.raises(error, match=needle):
        asyncio.run(backend.complete("acme/llm", "m", body("ping")))


def test_openai_backend_unreachable() -> None:
    backend = OpenAIBackend("down", "http://127.0.0.1:9/v1", timeout_s=2)
    with pytest.raises(BackendError, match="unreachable"):
        asyncio.run(backend.complete("acme/llm", "m", body("ping")))
    with pytest.raises(BackendError, match="unreachable"):
        asyncio.run(backend.open_stream("acme/llm", "m", body("ping")))


def test_openai_backend_sends_the_key_from_the_environment(monkeypatch) -> None:
    backend = OpenAIBackend("up", "http://127.0.0.1:9/v1", api_key_env="MIXLLM_TEST_KEY")
    assert backend._headers() == {}
    monkeypatch.setenv("MIXLLM_TEST_KEY", "sk-test")
    assert backend._headers() == {"Authorization": "Bearer sk-test"}
    assert "sk-test" not in str(backend.describe())


def test_packaged_registry_sends_everything_to_replay() -> None:
    registry = BackendRegistry.from_yaml()
    backend, model = registry.resolve(STRONG)
    assert backend.kind == "replay" and model == STRONG
    assert {b["name"] for b in registry.describe_all()} == {"replay", "openai"}


def test_yaml_routes_an_llm_to_a_declared_backend(tmp_path: Path) -> None:
    path = tmp_path / "backends.yaml"
    path.write_text(
        "default_backend: replay\n"
        "backends:\n"
        "  - {name: replay, kind: replay}\n"
        "  - {name: local, kind: openai, base_url: 'http://127.0.0.1:8000/v1', timeout_s: 3}\n"
        "llms:\n"
        "  - {name: acme/llm, backend: local, model: served, input_price: 1.0e-7,"
        " output_price: 2.0e-7}\n"
    )
    registry = BackendRegistry.from_yaml(path)
    backend, model = registry.resolve("acme/llm")
    assert (backend.name, backend.kind, model) == ("local", "openai", "served")
    assert registry.routes()[0].input_price == 1e-7


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("backends: [{name: a, kind: openai}]\ndefault_backend: a\n", "needs a base_url"),
        ("backends: [{name: a, kind: replay}]\ndefault_backend: b\n", "default_backend 'b'"),
        (
            "backends: [{name: a, kind: replay}]\ndefault_backend: a\n"
            "llms: [{name: m, backend: zz}]\n",
            "unknown backend 'zz'",
        ),
        ("backends: [{name: a, kind: ftp}]\ndefault_backend: a\n", "kind"),
        ("backends: [\n", "cannot read"),
    ],
)
def test_bad_backends_files_are_config_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_backends_config(path)


def test_unknown_backend_name(monkeypatch) -> None:
    registry = BackendRegistry.from_yaml()
    with pytest.raises(InvalidRequestError, match="unknown backend 'nope'"):
        registry.backend("nope")
