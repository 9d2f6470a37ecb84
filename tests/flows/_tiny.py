"""A tiny RouterBench-format dataset with a strong, learnable routing signal.

Three tasks with clearly different wording (Python coding, science multiple choice,
fill-in-the-blank coreference). Each cheap LLM is perfect on one task and wrong on the
others; gpt-4 is right on 90 % of everything at ~30x the price. A router that reads the
query routes each task to its specialist (quality ~1 at a few % of gpt-4's cost); one
trained on shuffled quality labels cannot, which makes "worse model" tests deterministic.
"""

from __future__ import annotations

from pathlib import Path

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


def _queries(task: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        a, b = divmod(i, 10)
        if task == "mbpp":
            out.append(f"Write a python function to {_ACTIONS[b]} {_OBJECTS[a % 4]}.")
        elif task == "arc-challenge":
            out.append(
                f"Which statement best describes the {_ASPECTS[a % 4]} involved when "
                f"{_THINGS[b]}?\nA) heat moves\nB) light bends\nC) mass vanishes\nD) nothing"
            )
        else:
            x, y = _NAMES[b]
            out.append(
                f"{x} helped {y} on the weekend because _ {_REASONS[a % 4]}. "
                f"Option1: {x} Option2: {y}"
            )
    return out


def tiny_frame(per_task: int = 40) -> pd.DataFrame:
    """The dataset as a RouterBench wide DataFrame (``per_task`` queries per task)."""
    rows = []
    for task, specialist in SPECIALISTS.items():
        for i, query in enumerate(_queries(task, per_task)):
            row: dict[str, object] = {
                "sample_id": f"{task}.{i}",
                "prompt": repr([query]),
                "eval_name": task,
            }
            tokens_in = len(query.split()) * 1.3
            for llm in LLMS:
                quality = (1.0 if i % 10 else 0.0) if llm == STRONG else float(llm == specialist)
                answer = "The answer is " + " ".join(["x"] * (10 + 3 * (i % 5)))
                p_in, p_out = PRICES[llm]
                row[llm] = quality
                row[f"{llm}|model_response"] = repr([answer])
                row[f"{llm}|total_cost"] = tokens_in * p_in + len(answer.split()) * 1.3 * p_out
            rows.append(row)
    return pd.DataFrame(rows)


def write_tiny(path: Path, per_task: int = 40) -> Path:
    """Write the dataset as CSV and return its path."""
    tiny_frame(per_task).to_csv(path, index=False)
    return path
