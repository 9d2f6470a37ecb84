"""LinUCB-style online correction and exploration bonus on top of the LightGBM predictions.

Each LLM keeps a ridge regression of the residual (observed quality - predictor quality) on a
low-dimensional projection of the query embedding plus a bias. The training queries enter only
as a light prior on the design matrix (``prior_weight``), so feedback corrects the predictor
quickly, and an LLM added at runtime starts with a wide confidence bound and gets explored.
"""

from __future__ import annotations

import numpy as np


class LinUCB:
    """Per-LLM ridge models on features ``z`` (n, d); Sherman-Morrison updates keep A^-1."""

    def __init__(self, dim: int, ridge: float = 1.0, prior_weight: float = 0.02):
        self.dim = dim
        self.ridge = ridge
        self.prior_weight = prior_weight
        self.llms_: list[str] = []
        self.A_inv_ = np.zeros((0, dim, dim))
        self.b_ = np.zeros((0, dim))
        self.n_updates_ = np.zeros(0, dtype=int)

    def add(self, llm: str, Z_prior: np.ndarray | None = None) -> None:
        """Start a model for ``llm``; training features (if any) shape its prior confidence."""
        A = self.ridge * np.eye(self.dim)
        if Z_prior is not None and len(Z_prior):
            A += self.prior_weight * Z_prior.T @ Z_prior
        self.llms_.append(llm)
        self.A_inv_ = np.concatenate([self.A_inv_, np.linalg.inv(A)[None]])
        self.b_ = np.concatenate([self.b_, np.zeros((1, self.dim))])
        self.n_updates_ = np.append(self.n_updates_, 0)

    def correction(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(delta, width), each (n, k): the learned residual and the confidence width."""
        theta = np.einsum("kde,ke->kd", self.A_inv_, self.b_)
        delta = Z @ theta.T
        AZ = np.einsum("kde,ne->nkd", self.A_inv_, Z)
        width = np.sqrt(np.maximum(np.einsum("nkd,nd->nk", AZ, Z), 0.0))
        return delta, width

    def update(self, llm: str, z: np.ndarray, residual: float, weight: float = 1.0) -> None:
        """Add one observation ``residual`` for ``llm`` at features ``z``."""
        j = self.llms_.index(llm)
        z = np.asarray(z, dtype=float) * np.sqrt(weight)
        Ainv = self.A_inv_[j]
        Az = Ainv @ z
        self.A_inv_[j] = Ainv - np.outer(Az, Az) / (1.0 + z @ Az)
        self.b_[j] += np.sqrt(weight) * residual * z
        self.n_updates_[j] += 1
