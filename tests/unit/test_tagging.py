"""Offline taxonomy tagger, the LLM tagger's protocol, and tag one-hots."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import numpy as np
import pytest

from mixllm.core.errors import ConfigError
from mixllm.routing.encoder import HashEncoder
from mixllm.routing.tagging import FACETS, LLMTagger, TaxonomyTagger, load_taxonomy, tag_matrix


@pytest.fixture(scope="module")
def tagger():
    return TaxonomyTagger().fit(HashEncoder(256))


def test_every_query_gets_one_tag_per_facet(tagger):
    tags = tagger.tag(["What is the capital of France?", "hello"])
    for row in tags:
        assert [t.split(":")[0] for t in row] == list(FACETS)


def test_keyword_rules_decide_the_task(tagger):
    code, blank, mcq = tagger.tag(
        [
            "Write a python function to reverse a string.",
            "Sarah lent Maria money because _ was rich.",
            "Which gas do plants absorb?\nA) oxygen\nB) carbon dioxide",
        ]
    )
    assert "task:code_generation" in code
    assert "task:fill_in_the_blank" in blank
    assert "task:multiple_choice_qa" in mcq


def test_tags_are_in_the_vocabulary_and_one_hot(tagger):
    tags = tagger.tag(["Write a python function to add two numbers."])
    M = tag_matrix(tags, tagger.vocabulary)
    assert M.shape == (1, len(tagger.vocabulary)) and M.sum() == 3


def test_describe_uses_the_descriptions(tagger):
    assert "Python" in tagger.describe(["domain:programming"])


def test_untagged_before_fit_is_an_error():
    with pytest.raises(ConfigError, match="fit"):
        TaxonomyTagger().tag(["x"])


def test_broken_taxonomy_is_named(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("domain: {x: {description: d}}\ntask: {}\n")
    with pytest.raises(ConfigError, match="task"):
        load_taxonomy(bad)


class _ChatHandler(BaseHTTPRequestHandler):
    answer = '{"domain": ["programming"], "task": ["code_generation"], "skill": ["nonsense"]}'

    def do_POST(self):
        body = json.dumps(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": self.answer},
                    }
                ],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def chat_server():
    server = HTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_llm_tagger_keeps_answers_inside_the_taxonomy(chat_server):
    tagger = LLMTagger(chat_server, "m").fit(HashEncoder(64))
    (tags,) = tagger.tag(["Write a function that adds."])
    assert tags == ["domain:programming", "task:code_generation", "skill:other"]


def test_llm_tagger_falls_back_when_the_endpoint_is_down():
    tagger = LLMTagger("http://127.0.0.1:9/v1", "m", timeout_s=1).fit(HashEncoder(64))
    (tags,) = tagger.tag(["Write a python function to sort."])
    assert "task:code_generation" in tags


def test_parse_rejects_non_json():
    assert LLMTagger("http://x", "m").parse("no json here") is None
    assert np.isclose(len(LLMTagger("http://x", "m").parse('{"domain": "physics"}')), 3)
