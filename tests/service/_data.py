"""A tiny RouterBench-format dataset for the service tests.

Three tasks worded differently; each cheap LLM is right only on its own task, gpt-4 is right
on nearly everything at ~30x the price. Every recorded answer names the LLM and the query,
so a test can tell which LLM's recording the replay backend returned.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

STRONG = "gpt-4-1106-preview"
SPECIALISTS = {
    "mbpp": "mistralai/mistral-7b-chat",
    "arc-challenge": "mistralai/mixtral-8x7b-chat",
    "winogrande": "meta/llama-2-70b-chat",
}
LLMS = [STRONG, *SPECIALISTS.values()]
PRICES = {  # $ per token (input, output)
    STRONG: (10e-6, 30e-6),
    "mistralai/mistral-7b-chat": (0.2e-6, 0.2e-6),
    "mistralai/mixtral-8x7b-chat": (0.6e-6, 0.6e-6),
    "meta/llama-2-70b-chat": (0.9e-6, 0.9e-6),
}
_ACTIONS = [
    "reverse",
    "sort",
    "count the vowels in",
    "remove duplicates from",
    "flatten",
    "find the maximum of",
    "sum the digits of",
    "rotate",
    "merge",
    "split",
]
_OBJECTS = ["a list of integers", "a string", "a nested list"]
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
_REASONS = ["was very generous", "needed help moving", "had more free time"]


def query(task: str, i: int) -> str:
    """The i-th query of a task."""
    a, b = divmod(i, 10)
    if task == "mbpp":
        return f"Write a python function to {_ACTIONS[b]} {_OBJECTS[a % 3]}."
    if task == "arc-challenge":
        return (
            f"Which statement best describes what happens to {_THINGS[b]} (case {a})?\n"
            "A) heat moves\nB) light bends\nC) mass vanishes\nD) nothing"
        )
    x, y = _NAMES[b]
    return f"{x} helped {y} on the weekend because _ {_REASONS[a % 3]}. Option1: {x} Option2: {y}"


def answer(llm: str, sample_id: str) -> str:
    """The recorded answer of ``llm`` to ``sample_id``: names both."""
    return f"[{llm}] recorded answer to {sample_id}: " + " ".join(["word"] * 12)


def tiny_frame(per_task: int = 30) -> pd.DataFrame:
    """The dataset as a RouterBench wide DataFrame."""
    rows = []
    for task, specialist in SPECIALISTS.items():
        for i in range(per_task):
            sample_id = f"{task}.{i}"
            q = query(task, i)
            row: dict[str, object] = {
                "sample_id": sample_id,
                "prompt": repr([q]),
                "eval_name": task,
            }
            for llm in LLMS:
                quality = (1.0 if i % 10 else 0.0) if llm == STRONG else float(llm == specialist)
                text = answer(llm, sample_id)
                p_in, p_out = PRICES[llm]
                row[llm] = quality
                row[f"{llm}|model_response"] = repr([text])
                row[f"{llm}|total_cost"] = len(q.split()) * 1.3 * p_in + 16 * p_out
            rows.append(row)
    return pd.DataFrame(rows)


def write_tiny(path: Path, per_task: int = 30) -> Path:
    """Write the dataset as CSV; returns the path."""
    tiny_frame(per_task).to_csv(path, index=False)
    return path
