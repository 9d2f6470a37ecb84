"""Many LightGBM boosters evaluated at once in numpy: sub-millisecond single-query prediction.

Calling ``Booster.predict`` costs ~40 us per call whatever the batch size, so 11 LLMs x
(3 quality bags + 1 length model) would spend ~2 ms per routed query in call overhead alone.
Flattening every tree of every booster into one node table and walking all trees in lock-step
evaluates them together in a handful of vectorized steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _flatten(node: dict, table: list[list[float]]) -> int:
    """Append ``node`` and its subtree to ``table``; return the node's row index."""
    idx = len(table)
    table.append([0.0, np.inf, idx, idx, 0.0])
    if "leaf_value" in node:
        table[idx][4] = float(node["leaf_value"])
        return idx
    if node.get("decision_type", "<=") != "<=":
        raise ValueError(f"unsupported split {node.get('decision_type')!r} (categorical?)")
    left = _flatten(node["left_child"], table)
    right = _flatten(node["right_child"], table)
    table[idx][:4] = [float(node["split_feature"]), float(node["threshold"]), left, right]
    return idx


def _depth(node: dict) -> int:
    if "leaf_value" in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


class TreeEnsembles:
    """Raw scores of several boosters, one column per booster (numeric splits, no NaN input)."""

    def __init__(self, boosters: Sequence) -> None:
        table: list[list[float]] = []
        roots, owner, depth = [], [], 0
        for b, booster in enumerate(boosters):
            for tree in booster.dump_model()["tree_info"]:
                structure = tree["tree_structure"]
                roots.append(_flatten(structure, table))
                owner.append(b)
                depth = max(depth, _depth(structure))
        arr = np.asarray(table, dtype=np.float64).reshape(-1, 5)
        self.feature = arr[:, 0].astype(np.intp)
        self.threshold = arr[:, 1]
        # child[2 * node + went_right]: one gather per level instead of two plus a select
        self.child = arr[:, 2:4].astype(np.intp).ravel()
        self.value = arr[:, 4]
        self.roots = np.asarray(roots, dtype=np.intp)
        self.owner = np.asarray(owner, dtype=np.intp)
        self.depth = depth
        self.n_models = len(boosters)
        # trees are stored booster by booster, so per-booster sums are contiguous segments
        self._starts = np.searchsorted(self.owner, np.arange(self.n_models))

    def predict_raw(self, X: np.ndarray) -> np.ndarray:
        """(n, n_models) raw scores (before any link function)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if X.shape[0] == 1:
            return self._predict_one(X[0])[None, :]
        cur = np.broadcast_to(self.roots, (X.shape[0], self.roots.size))
        rows = np.arange(X.shape[0])[:, None]
        for _ in range(self.depth):
            went_right = X[rows, self.feature[cur]] > self.threshold[cur]
            cur = self.child[2 * cur + went_right]
        return np.add.reduceat(self.value[cur], self._starts, axis=1)

    def _predict_one(self, x: np.ndarray) -> np.ndarray:
        cur = self.roots
        for _ in range(self.depth):
            cur = self.child[2 * cur + (x[self.feature[cur]] > self.threshold[cur])]
        return np.add.reduceat(self.value[cur], self._starts)
