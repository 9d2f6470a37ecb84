"""Query features: the PCA projection of the (tag-enhanced) embedding, the predictors' input
and the bandit's context vector. Fitted once, immutable, saved as plain arrays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mixllm.routing.tagging import tag_matrix


@dataclass(frozen=True)
class FeatureMap:
    """Embedding (n, e) -> projection P (n, p) -> predictor features F and bandit context Z.

    ``F = [P, one-hot tags (optional), log1p(prompt tokens, query tokens)]``;
    ``Z = [whitened first ``bandit_dim`` components / sqrt(bandit_dim), 1]``, unit norm on
    average so one ridge setting fits every embedding model.
    """

    mean: np.ndarray  # (e,)
    components: np.ndarray  # (p, e)
    scale: np.ndarray  # (bandit_dim,) std of the first components on the training rows
    vocabulary: tuple[str, ...] | None  # tag one-hot columns; None: no tag features

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        pca_dim: int,
        bandit_dim: int,
        vocabulary: Sequence[str] | None,
        seed: int = 0,
    ) -> FeatureMap:
        """PCA on the training embeddings ``X`` (n, e)."""
        from sklearn.decomposition import PCA

        n_comp = int(min(pca_dim, X.shape[1], max(2, X.shape[0] - 1)))
        pca = PCA(n_components=n_comp, random_state=seed).fit(X)
        scale = np.sqrt(pca.explained_variance_[:bandit_dim]) + 1e-9
        vocab = None if vocabulary is None else tuple(vocabulary)
        return cls(pca.mean_.copy(), pca.components_.copy(), scale, vocab)

    @property
    def bandit_dim(self) -> int:
        """Length of a bandit context vector (components plus the bias)."""
        return len(self.scale) + 1

    def project(self, X: np.ndarray) -> np.ndarray:
        """(n, p) projection; a plain matmul (sklearn's validation costs more than the maths)."""
        return (X - self.mean) @ self.components.T

    def predictor_features(
        self, P: np.ndarray, tags: Sequence[Sequence[str]], tokens: np.ndarray
    ) -> np.ndarray:
        """(n, f) LightGBM input from the projection, the tags and (n, 2) token counts."""
        parts = [P]
        if self.vocabulary is not None:
            parts.append(tag_matrix(tags, self.vocabulary))
        parts.append(np.log1p(tokens))
        return np.hstack(parts).astype(np.float64)

    def bandit_features(self, P: np.ndarray) -> np.ndarray:
        """(n, bandit_dim) LinUCB context."""
        comps = P[:, : len(self.scale)] / self.scale
        comps /= np.sqrt(comps.shape[1])
        return np.hstack([comps, np.ones((P.shape[0], 1))])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for the save format."""
        out = {"mean": self.mean, "components": self.components, "scale": self.scale}
        if self.vocabulary is not None:
            out["vocabulary"] = np.array(self.vocabulary, dtype=str)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureMap:
        """Inverse of ``to_arrays``."""
        vocab = arrays.get("vocabulary")
        return cls(
            np.asarray(arrays["mean"], dtype=float),
            np.asarray(arrays["components"], dtype=float),
            np.asarray(arrays["scale"], dtype=float),
            None if vocab is None else tuple(str(t) for t in vocab.tolist()),
        )
