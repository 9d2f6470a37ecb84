"""Query tagging: domain / task / skill tags that make query embeddings routing-aware."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Protocol

import numpy as np
import yaml

from mixllm.core.errors import ConfigError
from mixllm.routing.encoder import Encoder

log = logging.getLogger(__name__)

FACETS = ("domain", "task", "skill")


class Tagger(Protocol):
    """What the router needs from a tagger."""

    @property
    def vocabulary(self) -> list[str]: ...

    def fit(self, encoder: Encoder) -> Tagger: ...

    def tag(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None
    ) -> list[list[str]]: ...

    def describe(self, tags: Sequence[str]) -> str: ...


def load_taxonomy(path: str | Path | None = None) -> dict[str, dict[str, dict]]:
    """Read a taxonomy YAML (facet -> tag -> {description, keywords}); None: the packaged one."""
    if path is None:
        text = resources.files("mixllm.resources").joinpath("taxonomy.yaml").read_text()
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read taxonomy {path}: {exc}") from exc
    raw = yaml.safe_load(text) or {}
    missing = [f for f in FACETS if not raw.get(f)]
    if missing:
        raise ConfigError(f"taxonomy lacks facets: {', '.join(missing)}")
    for facet in FACETS:
        for name, spec in raw[facet].items():
            if not isinstance(spec, dict) or not spec.get("description"):
                raise ConfigError(f"taxonomy tag {facet}:{name} has no description")
    return {f: raw[f] for f in FACETS}


class TaxonomyTagger:
    """Offline tagger: keyword rules decide a facet when they match, else embedding similarity.

    Needs no LLM. Tag descriptions are embedded with the same encoder as the queries, so
    ``tag`` reuses the query embeddings the router computes anyway (one encoder pass per query).
    """

    def __init__(
        self,
        taxonomy_path: str | Path | None = None,
        max_tags_per_facet: int = 1,
        min_similarity: float = 0.15,
        taxonomy: dict[str, dict[str, dict]] | None = None,
    ):
        self.taxonomy_path = taxonomy_path
        self.max_tags_per_facet = max_tags_per_facet
        self.min_similarity = min_similarity
        self.taxonomy_ = taxonomy if taxonomy is not None else load_taxonomy(taxonomy_path)
        self._patterns = {
            f"{facet}:{name}": [re.compile(p, re.IGNORECASE) for p in spec.get("keywords", [])]
            for facet in FACETS
            for name, spec in self.taxonomy_[facet].items()
        }
        self._encoder: Encoder | None = None
        self._desc_emb: dict[str, np.ndarray] = {}

    @property
    def vocabulary(self) -> list[str]:
        """Every tag this tagger can emit, in a stable order."""
        return [f"{f}:{n}" for f in FACETS for n in self.taxonomy_[f]] + [
            f"{f}:other" for f in FACETS
        ]

    def fit(self, encoder: Encoder) -> TaxonomyTagger:
        """Embed the tag descriptions with ``encoder`` (the one that will embed the queries)."""
        self._encoder = encoder
        for facet in FACETS:
            descs = [spec["description"] for spec in self.taxonomy_[facet].values()]
            self._desc_emb[facet] = encoder.encode(descs)
        return self

    def _keyword_tags(self, text: str, facet: str) -> list[str]:
        hits = []
        for name in self.taxonomy_[facet]:
            tag = f"{facet}:{name}"
            if any(p.search(text) for p in self._patterns[tag]):
                hits.append(tag)
        return hits[: self.max_tags_per_facet]

    def tag(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[list[str]]:
        """Tags of each text: one or more per facet, ``facet:other`` when nothing fits."""
        if not self._desc_emb:
            raise ConfigError("TaxonomyTagger.fit(encoder) must run before tag()")
        if embeddings is None:
            embeddings = self._encoder.encode(list(texts))
        sims = {f: embeddings @ self._desc_emb[f].T for f in FACETS}
        out = []
        for i, text in enumerate(texts):
            tags: list[str] = []
            for facet in FACETS:
                found = self._keyword_tags(text, facet)
                if not found:
                    found = self._similar(facet, sims[facet][i])
                tags.extend(found or [f"{facet}:other"])
            out.append(tags)
        return out

    def _similar(self, facet: str, sim: np.ndarray) -> list[str]:
        names = list(self.taxonomy_[facet])
        order = np.argsort(-sim)[: self.max_tags_per_facet]
        return [f"{facet}:{names[j]}" for j in order if sim[j] >= self.min_similarity]

    def describe(self, tags: Sequence[str]) -> str:
        """Text rendering of tags (the positive side of the contrastive fine-tuning)."""
        parts = []
        for tag in tags:
            facet, _, name = tag.partition(":")
            spec = self.taxonomy_.get(facet, {}).get(name)
            parts.append(spec["description"] if spec else f"{facet}: {name}")
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """Settings and taxonomy (the save format; the encoder is saved on its own)."""
        return {
            "kind": "taxonomy",
            "max_tags_per_facet": self.max_tags_per_facet,
            "min_similarity": self.min_similarity,
            "taxonomy": self.taxonomy_,
        }


_INSTAG_PROMPT = """You are a query tagger for an LLM router (InsTag style).
Give the query below tags from this taxonomy only, as JSON:
{{"domain": [...], "task": [...], "skill": [...]}} with at most {k} tag(s) per facet.
Taxonomy:
{taxonomy}
Query:
{query}"""


class LLMTagger:
    """InsTag-style tagging by an LLM behind any OpenAI-compatible endpoint, kept to the taxonomy.

    Falls back to the offline taxonomy tagger for a query whose LLM call fails or answers
    outside the taxonomy, and logs it, so a flaky endpoint never stops training or routing.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        taxonomy_path: str | Path | None = None,
        max_tags_per_facet: int = 1,
        timeout_s: float = 30.0,
    ):
        self.base_url = base_url
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.fallback = TaxonomyTagger(taxonomy_path, max_tags_per_facet)
        self.max_tags_per_facet = max_tags_per_facet

    @property
    def vocabulary(self) -> list[str]:
        """Every tag this tagger can emit."""
        return self.fallback.vocabulary

    def to_dict(self) -> dict:
        """Endpoint settings (never a key: only the NAME of its environment variable)."""
        return {
            **self.fallback.to_dict(),
            "kind": "llm",
            "base_url": self.base_url,
            "model": self.model,
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
        }

    def fit(self, encoder: Encoder) -> LLMTagger:
        """Prepare the fallback tagger."""
        self.fallback.fit(encoder)
        return self

    def _client(self):
        from openai import OpenAI

        key = os.environ.get(self.api_key_env, "not-needed")
        return OpenAI(base_url=self.base_url, api_key=key, timeout=self.timeout_s, max_retries=1)

    def _prompt(self, query: str) -> str:
        tax = {f: list(self.fallback.taxonomy_[f]) for f in FACETS}
        return _INSTAG_PROMPT.format(
            k=self.max_tags_per_facet, taxonomy=json.dumps(tax), query=query
        )

    def parse(self, answer: str) -> list[str] | None:
        """Tags from the LLM's JSON answer, or None when it is unusable."""
        match = re.search(r"\{.*\}", answer, re.DOTALL)
        if not match:
            return None
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            return None
        tags = []
        for facet in FACETS:
            names = obj.get(facet) or []
            names = [names] if isinstance(names, str) else names
            valid = [f"{facet}:{n}" for n in names if n in self.fallback.taxonomy_[facet]]
            tags.extend(valid[: self.max_tags_per_facet] or [f"{facet}:other"])
        return tags

    def tag(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[list[str]]:
        """Tags of each text from the LLM (offline tagger where the LLM fails)."""
        client = self._client()
        fallback = self.fallback.tag(texts, embeddings)
        out = []
        for text, fb in zip(texts, fallback, strict=True):
            try:
                resp = client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": self._prompt(text)}],
                    temperature=0,
                )
                tags = self.parse(resp.choices[0].message.content or "")
            except Exception as exc:  # any transport or API failure: fall back, never stop
                log.warning("LLM tagger failed (%s); using the taxonomy tagger", exc)
                tags = None
            out.append(tags or fb)
        return out

    def describe(self, tags: Sequence[str]) -> str:
        """Text rendering of tags."""
        return self.fallback.describe(tags)


def tag_matrix(tags: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """One-hot (n, len(vocabulary)) float32 matrix of tags."""
    index = {t: j for j, t in enumerate(vocabulary)}
    out = np.zeros((len(tags), len(vocabulary)), dtype=np.float32)
    for i, row in enumerate(tags):
        for t in row:
            j = index.get(t)
            if j is not None:
                out[i, j] = 1.0
    return out


def tagger_from_dict(raw: dict) -> Tagger:
    """Rebuild a tagger saved with ``to_dict`` (call ``fit(encoder)`` before tagging)."""
    kind = raw.get("kind")
    if kind == "mined":
        from mixllm.routing.mined_tags import MinedTagger

        return MinedTagger.from_dict(raw)
    base = TaxonomyTagger(
        None, int(raw["max_tags_per_facet"]), float(raw["min_similarity"]), raw["taxonomy"]
    )
    if kind == "taxonomy":
        return base
    if kind == "llm":
        tagger = LLMTagger(
            raw["base_url"],
            raw["model"],
            raw["api_key_env"],
            None,
            base.max_tags_per_facet,
            float(raw["timeout_s"]),
        )
        tagger.fallback = base
        return tagger
    raise ConfigError(f"unknown tagger kind {kind!r} in saved router")
