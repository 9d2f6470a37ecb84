"""Tags mined from meaning: topics of the training embeddings, named by their terms."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from _routing import fast_config, make_task, price_table

from mixllm.routing.encoder import HashEncoder
from mixllm.routing.mined_tags import MinedTagger, name_clusters
from mixllm.routing.router import MixLLMRouter
from mixllm.routing.tagging import tagger_from_dict

TEXTS = [f"Sort the python list number {i} with a function" for i in range(10)] + [
    f"Why does copper metal conduct heat in experiment {i}" for i in range(10)
]


@pytest.mark.timeout(30)
def test_clusters_are_named_by_their_distinctive_terms():
    labels = np.array([0] * 10 + [1] * 10)
    names = name_clusters(TEXTS, labels)
    first, second = (set(n.removeprefix("topic:").split("-")) for n in names)
    assert first <= {"sort", "python", "list", "number", "function"}
    assert second <= {"why", "does", "copper", "metal", "conduct", "heat", "experiment"}


@pytest.mark.timeout(60)
def test_queries_get_the_topic_of_their_meaning_and_it_survives_save(tmp_path):
    enc = HashEncoder()
    X = enc.encode(TEXTS)
    tagger = MinedTagger(n_topics=2).mine(TEXTS, X).fit(enc)
    tags = tagger.tag(["Sort this python list with a function please"])
    assert tags[0] == tagger.tag(TEXTS[:1])[0]  # the topic of the python queries
    assert tags[0] != tagger.tag(TEXTS[10:11])[0]  # not that of the copper ones
    raw = yaml.safe_load(yaml.safe_dump(tagger.to_dict()))
    again = tagger_from_dict(raw).fit(enc)
    assert again.tag(TEXTS) == tagger.tag(TEXTS)


@pytest.mark.timeout(120)
def test_a_router_trains_and_reloads_with_mined_tags(tmp_path):
    cfg = fast_config(tagger={"kind": "mined", "n_topics": 3})
    router = MixLLMRouter(cfg, prices=price_table()).fit(make_task(n=150))
    assert any(t.startswith("topic:") for t in router.tagger_.vocabulary)
    d = router.route("Write a Python function to sort a list of numbers.")
    assert d.tags[0].startswith("topic:")
    router.save(tmp_path / "r")
    loaded = MixLLMRouter.load(tmp_path / "r")
    assert (
        loaded.route("Write a Python function to sort a list.").tags
        == router.route("Write a Python function to sort a list.").tags
    )
