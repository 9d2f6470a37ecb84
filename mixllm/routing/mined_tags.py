"""Tags from meaning: topics mined from the training queries' embeddings.

``MinedTagger`` clusters the (unit-norm) training embeddings with k-means and names each
cluster by its most distinctive words (frequency in the cluster over frequency in all
queries), e.g. ``topic:python-function-list``. A cluster is kept as a few exemplar queries
(those nearest its centre); ``fit(encoder)`` embeds them with whatever encoder will embed
the queries (base or tag-fine-tuned), so a query's topic is the prototype (mean exemplar
embedding) it is most similar to: no rule looks at a benchmark's formatting. The taxonomy
can be kept as an optional prior, by embedding similarity only (its keyword rules, which
recognise datasets by surface form, are switched off).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from mixllm.core.errors import ConfigError
from mixllm.routing.encoder import Encoder
from mixllm.routing.tagging import TaxonomyTagger

_WORD = re.compile(r"[a-z][a-z]{2,}")
# Function words carry no topic; the list is short on purpose (distinctiveness does the rest).
_STOP = frozenset(
    re.findall(
        r"\w+",
        "the and for are but not you all any can had her was one our out has him his how "
        "its may new now old see two who did get let say she too use that with have this "
        "will your from they been more when what which their there would about into than "
        "them then some these those were each other such only also just like very answer "
        "question following ",
    )
)
N_EXEMPLARS = 8


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def name_clusters(texts: Sequence[str], labels: np.ndarray, n_terms: int = 3) -> list[str]:
    """``topic:<w1>-<w2>-<w3>`` per cluster: its words most over-represented vs all texts."""
    docs = [_words(t) for t in texts]
    overall = Counter(w for d in docs for w in d)
    names = []
    for c in range(int(labels.max()) + 1):
        members = [docs[i] for i in np.flatnonzero(labels == c)]
        inside = Counter(w for d in members for w in d)
        # smoothed lift, weighted by coverage so one-off words do not name a cluster
        score = {
            w: (n / len(members)) * np.log((n + 1) / (overall[w] * len(members) / len(docs) + 1))
            for w, n in inside.items()
            if n >= 2
        }
        top = sorted(score, key=lambda w: (-score[w], w))[:n_terms] or [f"cluster{c}"]
        names.append("topic:" + "-".join(top))
    # equal names would merge two clusters' tags: number the repeats
    seen: Counter = Counter()
    out = []
    for n in names:
        seen[n] += 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


class MinedTagger:
    """Topic tags mined from training embeddings (see the module docstring)."""

    def __init__(
        self,
        n_topics: int = 12,
        exemplars: dict[str, list[str]] | None = None,
        prior: TaxonomyTagger | None = None,
        seed: int = 0,
    ) -> None:
        self.n_topics, self.seed = n_topics, seed
        self.exemplars_: dict[str, list[str]] = dict(exemplars or {})
        self.prior = prior
        if prior is not None:
            prior._patterns = {t: [] for t in prior._patterns}  # meaning only, no surface rules
        self._proto: np.ndarray | None = None

    @property
    def vocabulary(self) -> list[str]:
        """Mined topics (+ the prior's tags)."""
        return list(self.exemplars_) + (self.prior.vocabulary if self.prior else [])

    def mine(self, texts: Sequence[str], X: np.ndarray) -> MinedTagger:
        """Cluster the training embeddings ``X`` (n, e) and keep named exemplars."""
        from sklearn.cluster import KMeans

        U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        k = max(1, min(self.n_topics, len(texts) // 5))
        km = KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(U)
        names = name_clusters(texts, km.labels_)
        self.exemplars_ = {}
        for c, name in enumerate(names):
            rows = np.flatnonzero(km.labels_ == c)
            dist = np.linalg.norm(U[rows] - km.cluster_centers_[c], axis=1)
            self.exemplars_[name] = [texts[i] for i in rows[np.argsort(dist)[:N_EXEMPLARS]]]
        self._proto = None
        return self

    def fit(self, encoder: Encoder) -> MinedTagger:
        """Prototype per topic: mean unit embedding of its exemplars under ``encoder``."""
        self._encoder = encoder
        if self.prior is not None:
            self.prior.fit(encoder)
        if self.exemplars_:
            protos = []
            for ex in self.exemplars_.values():
                E = encoder.encode(list(ex))
                E = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
                protos.append(E.mean(axis=0))
            P = np.array(protos)
            self._proto = P / np.maximum(np.linalg.norm(P, axis=1, keepdims=True), 1e-12)
        return self

    def tag(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[list[str]]:
        """The nearest topic of each text (+ the prior's tags); ``mine`` + ``fit`` first."""
        if self._proto is None:
            raise ConfigError("MinedTagger needs mine(texts, X) and fit(encoder) before tag()")
        X = self._encoder.encode(list(texts)) if embeddings is None else embeddings
        U = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        names = list(self.exemplars_)
        nearest = np.argmax(U @ self._proto.T, axis=1)
        prior = self.prior.tag(texts, X) if self.prior is not None else [[] for _ in texts]
        return [[names[j], *p] for j, p in zip(nearest, prior, strict=True)]

    def describe(self, tags: Sequence[str]) -> str:
        """Text of tags for the contrastive fine-tuning: a topic reads as its terms."""
        parts = []
        for t in tags:
            if t.startswith("topic:"):
                parts.append("a query about " + ", ".join(t[len("topic:") :].split("-")))
        rest = [t for t in tags if not t.startswith("topic:")]
        if rest and self.prior is not None:
            parts.append(self.prior.describe(rest))
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """Settings, named exemplars and the prior (the save format)."""
        return {
            "kind": "mined",
            "n_topics": self.n_topics,
            "seed": self.seed,
            "exemplars": self.exemplars_,
            "prior": None if self.prior is None else self.prior.to_dict(),
        }

    @classmethod
    def from_dict(cls, raw: dict) -> MinedTagger:
        """Inverse of ``to_dict`` (call ``fit(encoder)`` before tagging)."""
        prior = raw.get("prior")
        base = None
        if prior is not None:
            base = TaxonomyTagger(
                None,
                int(prior["max_tags_per_facet"]),
                float(prior["min_similarity"]),
                prior["taxonomy"],
            )
        return cls(int(raw["n_topics"]), raw["exemplars"], base, int(raw.get("seed", 0)))
