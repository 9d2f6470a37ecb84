"""The ``replay`` backend: answers with the recorded RouterBench response of the chosen LLM,
offline, with the recorded quality and cost; honours ``max_tokens`` and ``stop`` by cutting
the recorded answer, and says which OpenAI parameters it cannot honour."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mixllm.core.errors import BackendError, DataError
from mixllm.core.paths import default_data_path
from mixllm.core.tokens import count_tokens
from mixllm.serving.replies import BackendReply, BackendStream, last_user_text, prompt_text

log = logging.getLogger(__name__)

REPLAY_CHUNK_CHARS = 24  # size of the pieces a replayed answer is streamed in
_SPACES = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACES.sub(" ", text).strip().lower()


@dataclass
class _ReplayIndex:
    """Recorded answers, one row per query, and what is needed to find a row by text."""

    sample_ids: list[str]
    queries: list[str]
    responses: dict[str, list[str | None]]  # llm -> answer per row (None: not recorded)
    quality: dict[str, np.ndarray]
    cost: dict[str, np.ndarray]
    exact: dict[str, int]  # normalized query or whole prompt -> row
    vectorizer: Any
    matrix: Any  # TF-IDF of the queries, rows L2-normalized


class ReplayBackend:
    """Answers with the recorded RouterBench response of the chosen LLM.

    A request matches a recorded row by the exact text of its last user message (the
    question, or the whole recorded prompt), else the most similar recorded question that
    the LLM answered (TF-IDF cosine). The reply says which in ``detail["match"]``.
    """

    kind = "replay"

    def __init__(self, name: str = "replay", data_path: str | Path | None = None) -> None:
        self.name = name
        self.data_path = Path(data_path) if data_path else default_data_path()
        self._index: _ReplayIndex | None = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        """Kind and data path."""
        return {"name": self.name, "kind": self.kind, "data_path": str(self.data_path)}

    def unsupported(self, body: dict[str, Any]) -> str | None:
        """A recording is one plain-text answer: n > 1, tool calls and structured output
        cannot be honoured (max_tokens and stop are, by cutting the recorded answer)."""
        if (body.get("n") or 1) > 1:
            return "n: a replayed LLM has one recorded answer per query (n must be 1)"
        if body.get("tools") and body.get("tool_choice") != "none":
            return "tools: a replayed LLM cannot call tools"
        kind = (body.get("response_format") or {}).get("type", "text")
        if kind != "text":
            return f"response_format: a replayed LLM answers plain text, not {kind}"
        return None

    def llms(self) -> list[str]:
        """LLMs with recorded answers."""
        return list(self._load().responses)

    def _load(self) -> _ReplayIndex:
        with self._lock:
            if self._index is None:
                t0 = time.perf_counter()
                self._index = _build_index(self.data_path)
                log.info(
                    "replay backend: %d recorded queries from %s in %.1fs",
                    len(self._index.queries),
                    self.data_path,
                    time.perf_counter() - t0,
                )
            return self._index

    def lookup(self, llm: str, text: str) -> tuple[int, str, float]:
        """(row, 'exact' | 'nearest', similarity) of the recorded answer of ``llm`` for ``text``."""
        index = self._load()
        answers = index.responses.get(llm)
        if answers is None:
            raise BackendError(
                f"replay backend has no recorded answers for LLM {llm!r}; "
                f"recorded: {', '.join(index.responses)}"
            )
        row = index.exact.get(_norm(text))
        if row is not None and answers[row] is not None:
            return row, "exact", 1.0
        from mixllm.data.routerbench import last_block

        query_vec = index.vectorizer.transform([last_block(text)])
        sims = (index.matrix @ query_vec.T).toarray().ravel()
        sims[[a is None for a in answers]] = -1.0
        best = int(np.argmax(sims))
        return best, "nearest", float(max(sims[best], 0.0))

    def _reply_parts(self, llm: str, body: dict[str, Any]) -> tuple[str, dict[str, Any], int]:
        messages = body.get("messages") or []
        text = last_user_text(messages)
        row, match, similarity = self.lookup(llm, text)
        index = self._load()
        detail = {
            "backend": self.name,
            "match": match,
            "similarity": round(similarity, 4),
            "sample_id": index.sample_ids[row],
            "recorded_query": index.queries[row][:200],
        }
        return str(index.responses[llm][row]), detail, row

    async def complete(self, llm: str, model: str, body: dict[str, Any]) -> BackendReply:
        """The recorded answer of ``model`` (the route's model id, what
        ``check_answerable`` checked) with its recorded quality and cost."""
        t0 = time.perf_counter()
        llm = model  # recordings are keyed by the model that answered them
        answer, detail, row = self._reply_parts(llm, body)
        answer, finish = cut_answer(answer, body)
        index = self._load()
        return BackendReply(
            text=answer,
            prompt_tokens=count_tokens(prompt_text(body.get("messages") or [])),
            completion_tokens=count_tokens(answer),
            latency_s=time.perf_counter() - t0,
            finish_reason=finish,
            cost_usd=_finite(index.cost[llm][row]),
            quality=_finite(index.quality[llm][row]),
            detail=detail,
        )

    async def open_stream(self, llm: str, model: str, body: dict[str, Any]) -> BackendStream:
        """The recorded answer of ``model`` cut in small pieces, as OpenAI chunks."""
        llm = model  # recordings are keyed by the model that answered them
        answer, detail, row = self._reply_parts(llm, body)
        answer, finish = cut_answer(answer, body)
        index = self._load()

        async def chunks() -> AsyncIterator[dict[str, Any]]:
            yield {"choices": [{"index": 0, "delta": {"role": "assistant"}}]}
            for i in range(0, len(answer), REPLAY_CHUNK_CHARS):
                piece = answer[i : i + REPLAY_CHUNK_CHARS]
                yield {"choices": [{"index": 0, "delta": {"content": piece}}]}
            yield {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}

        return BackendStream(
            chunks(),
            detail,
            quality=_finite(index.quality[llm][row]),
            cost_usd=_finite(index.cost[llm][row]),
        )


def cut_answer(answer: str, body: dict[str, Any]) -> tuple[str, str]:
    """(answer cut as the request asks, finish_reason): before the first ``stop`` sequence
    ("stop"), then to at most max_completion_tokens / max_tokens tokens ("length")."""
    stops = body.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        at = answer.find(stop)
        if at >= 0:
            answer = answer[:at]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is None or count_tokens(answer) <= limit:
        return answer, "stop"
    lo, hi = 0, len(answer)  # the longest prefix within the limit (counts grow with length)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count_tokens(answer[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return answer[:lo], "length"


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _build_index(path: Path) -> _ReplayIndex:
    """Read RouterBench wide data and index its recorded answers for lookup."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mixllm.data.routerbench import COST_SUFFIX, RESPONSE_SUFFIX, last_block, parse_turns
    from mixllm.data.routerbench import routerbench_llms as discover
    from mixllm.data.tables import read_path

    df = read_path(path)
    llms = discover(df.columns)
    if not llms or "prompt" not in df.columns:
        raise DataError(f"{path}: not RouterBench data (no '<llm>{COST_SUFFIX}' / prompt columns)")
    df = df[df["prompt"].notna()]
    if "sample_id" in df.columns:
        df = df.drop_duplicates("sample_id")
    df = df.reset_index(drop=True)
    turns = df["prompt"].map(parse_turns)
    prompts = ["\n\n".join(t) for t in turns]
    queries = [last_block(t[-1]) if t else "" for t in turns]
    exact: dict[str, int] = {}
    for i, (query, prompt) in enumerate(zip(queries, prompts, strict=True)):
        exact.setdefault(_norm(query), i)
        exact.setdefault(_norm(prompt), i)
    responses: dict[str, list[str | None]] = {}
    for llm in llms:
        column = f"{llm}{RESPONSE_SUFFIX}"
        values = df[column] if column in df.columns else [None] * len(df)
        responses[llm] = [_answer_text(v) for v in values]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    matrix = vectorizer.fit_transform(queries)
    ids = df["sample_id"].astype(str).tolist() if "sample_id" in df.columns else []
    return _ReplayIndex(
        sample_ids=ids or [str(i) for i in range(len(df))],
        queries=queries,
        responses=responses,
        quality={m: _column(df, m) for m in llms},
        cost={m: _column(df, f"{m}{COST_SUFFIX}") for m in llms},
        exact=exact,
        vectorizer=vectorizer,
        matrix=matrix,
    )


def _answer_text(value: Any) -> str | None:
    from mixllm.data.routerbench import parse_turns

    turns = parse_turns(value)
    return "\n\n".join(turns) if turns else None


def _column(df: Any, name: str) -> np.ndarray:
    import pandas as pd

    if name not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
