"""Encoders and the content-hash embedding cache."""

import numpy as np
import pytest

from mixllm.routing.embedding_cache import EmbeddingCache, encode_cached
from mixllm.routing.encoder import (
    HashEncoder,
    SentenceEncoder,
    load_encoder,
    save_encoder,
)


def test_cache_roundtrip(tmp_path):
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    cache.put_many({"k": np.array([1.0, 2.0], dtype=np.float32)})
    got = EmbeddingCache(tmp_path / "e.sqlite").get_many(["k", "missing"])
    assert list(got) == ["k"]
    np.testing.assert_array_equal(got["k"], [1.0, 2.0])


def test_only_unseen_texts_are_computed(tmp_path):
    cache = EmbeddingCache(tmp_path / "e.sqlite")
    calls = []

    def compute(texts):
        calls.append(list(texts))
        return np.ones((len(texts), 3), dtype=np.float32) * len(calls)

    first = encode_cached(["a", "b", "a"], "fp", 3, compute, cache)
    second = encode_cached(["b", "c"], "fp", 3, compute, cache)
    assert calls == [["a", "b"], ["c"]]  # duplicates and cached texts are not re-embedded
    np.testing.assert_array_equal(second[0], first[1])
    encode_cached(["a"], "other-model", 3, compute, cache)
    assert calls[-1] == ["a"]  # another encoder fingerprint is another key


def test_hash_encoder_is_normalized_and_persistable(tmp_path):
    enc = HashEncoder(64)
    X = enc.encode(["hello world", "another query"])
    assert X.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-5)
    save_encoder(enc, tmp_path / "enc")
    assert load_encoder(tmp_path / "enc").fingerprint == enc.fingerprint


@pytest.mark.slow
def test_packaged_minilm_embeds_offline_through_the_cache(tmp_path):
    enc = SentenceEncoder(cache_dir=tmp_path)
    X = enc.encode(["What is the boiling point of water?", "Write a sort function."])
    assert X.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, rtol=1e-4)
    assert (tmp_path / "embeddings.sqlite").exists()
    again = SentenceEncoder(cache_dir=tmp_path).encode(["Write a sort function."])
    np.testing.assert_allclose(again[0], X[1], rtol=1e-6)


@pytest.mark.slow
def test_tag_contrastive_finetuning_pulls_queries_to_their_tags(tmp_path):
    texts = [f"Write a Python function to {w} a list." for w in ("sort", "reverse", "sum")] + [
        f"Why does {w} conduct heat?" for w in ("copper", "iron", "silver")
    ]
    tags = ["write code: programming task"] * 3 + ["physics: heat and energy"] * 3
    enc = SentenceEncoder(cache_dir=tmp_path)
    before = enc.fingerprint
    q, t = enc.encode(texts), enc.encode(tags)
    gap_before = np.mean(np.sum(q * t, axis=1))
    enc.finetune(texts, tags, epochs=3, batch_size=4, learning_rate=5e-5)
    assert enc.fingerprint != before
    q2, t2 = enc.encode(texts), enc.encode(tags)
    assert np.mean(np.sum(q2 * t2, axis=1)) > gap_before
    # the fine-tuned weights are cached: a second encoder skips training
    again = SentenceEncoder(cache_dir=tmp_path).finetune(
        texts, tags, epochs=3, batch_size=4, learning_rate=5e-5
    )
    assert again.fingerprint == enc.fingerprint
