"""A tiny RouterBench-format dataset with a strong, learnable routing signal, and the router
config that trains on it in seconds (used by the flow and the service tests).

Three tasks with clearly different wording (Python coding, science multiple choice,
fill-in-the-blank coreference). Each cheap LLM is perfect on one task and wrong on the
others; gpt-4 is right on 90 % of everything at ~30x the price. A router that reads the
query routes each task to its specialist (quality ~1 at a few % of gpt-4's cost); one
trained on shuffled quality labels cannot, which makes "worse model" tests deterministic.
Every recorded answer names the LLM and the query, so a test can tell which LLM's
recording the replay backend returned. Queries are distinct for up to 40 per task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

SPECIALISTS = {
    "mbpp": "mistralai/mistral-7b-chat",
    "arc-challenge": "mistralai/mixtral-8x7b-chat",
    "winogrande": "meta/llama-2-70b-chat",
}
STRONG = "gpt-4-1106-preview"
LLMS = [STRONG, *SPECIALISTS.values()]
# $ per token (input, output), in the ratios of the real price list.
PRICES = {
    STRONG: (10e-6, 30e-6),
    "mistralai/mistral-7b-chat": (0.2e-6, 0.2e-6),
    "mistralai/mixtral-8x7b-chat": (0.6e-6, 0.6e-6),
    "meta/llama-2-70b-chat": (0.9e-6, 0.9e-6),
}
# A router config that trains in seconds: no encoder fine-tuning, tiny LightGBM.
FAST_CONFIG: dict[str, Any] = {
    "encoder": {"finetune": False},
    "predictor": {
        "n_estimators": 10,
        "n_bags": 1,
        "min_child_samples": 3,
        "num_leaves": 4,
        "threads": 1,
    },
    "decision": {"lambda_grid_size": 12},
    # 5 folds instead of the default (up to 20): the flows fan out one task per fold
    "train": {"calibration_folds": 5},
}

_ACTIONS = [
    "reverse",
    "sort",
    "count the vowels in",
    "remove duplicates from",
    "find the maximum of",
    "sum the digits of",
    "check if a palindrome is in",
    "flatten",
    "rotate",
    "merge",
]
_OBJECTS = ["a list of integers", "a string", "a nested list", "a tuple of words"]
_THINGS = [
    "a metal spoon in hot soup",
    "a plant kept in a dark closet",
    "ice left in the sun",
    "a magnet near iron filings",
    "salt stirred into water",
    "a ball rolling uphill",
    "a seed planted in spring",
    "water vapour on a cold window",
    "a battery in a circuit",
    "the moon orbiting the earth",
]
_ASPECTS = ["energy", "change", "force", "cause"]
_NAMES = [
    ("Maria", "Jessica"),
    ("Kevin", "Brian"),
    ("Rachel", "Monica"),
    ("Derrick", "Adam"),
    ("Sarah", "Emily"),
    ("Justin", "Robert"),
    ("Lindsey", "Tanya"),
    ("Neil", "Craig"),
    ("Amy", "Natalie"),
    ("Logan", "Dennis"),
]
_REASONS = ["was very generous", "needed help moving", "had more free time", "was a better cook"]


def query(task: str, i: int) -> str:
    """The i-th query of a task."""
    a, b = divmod(i, 10)
    if task == "mbpp":
        return f"Write a python function to {_ACTIONS[b]} {_OBJECTS[a % 4]}."
    if task == "arc-challenge":
        return (
            f"Which statement best describes the {_ASPECTS[a % 4]} involved when "
            f"{_THINGS[b]}?\nA) heat moves\nB) light bends\nC) mass vanishes\nD) nothing"
        )
    x, y = _NAMES[b]
    return f"{x} helped {y} on the weekend because _ {_REASONS[a % 4]}. Option1: {x} Option2: {y}"


def answer(llm: str, sample_id: str) -> str:
    """The recorded answer of ``llm`` to ``sample_id``: names both."""
    return f"[{llm}] recorded answer to {sample_id}: " + " ".join(["word"] * 12)


def _row(task: str, i: int, specialist: str) -> dict[str, object]:
    sample_id = f"{task}.{i}"
    q = query(task, i)
    row: dict[str, object] = {"sample_id": sample_id, "prompt": repr([q]), "eval_name": task}
    for llm in LLMS:
        quality = (1.0 if i % 10 else 0.0) if llm == STRONG else float(llm == specialist)
        text = answer(llm, sample_id)
        p_in, p_out = PRICES[llm]
        row[llm] = quality
        row[f"{llm}|model_response"] = repr([text])
        row[f"{llm}|total_cost"] = len(q.split()) * 1.3 * p_in + len(text.split()) * 1.3 * p_out
    return row


def tiny_frame(per_task: int = 40) -> pd.DataFrame:
    """The dataset as a RouterBench wide DataFrame (``per_task`` queries per task)."""
    return pd.DataFrame(
        [
            _row(task, i, specialist)
            for task, specialist in SPECIALISTS.items()
            for i in range(per_task)
        ]
    )


def write_tiny(path: Path, per_task: int = 40) -> Path:
    """Write the dataset as CSV and return its path."""
    tiny_frame(per_task).to_csv(path, index=False)
    return path


def write_fast_config(path: Path, **encoder: Any) -> Path:
    """FAST_CONFIG as YAML at ``path`` (``encoder`` overrides encoder settings); the path."""
    from mixllm.core.config import MixLLMConfig

    values = {**FAST_CONFIG, "encoder": {**FAST_CONFIG["encoder"], **encoder}}
    MixLLMConfig.model_validate(values).to_yaml(path)
    return path
