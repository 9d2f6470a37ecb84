"""LinUCB (Li et al., 2010) on the residual of the offline quality predictors.

Each LLM keeps a ridge regression of the residual ``observed quality - offline prediction``
on a low-dimensional projection ``z`` of the query embedding plus a bias. The offline
prediction is the LightGBM estimate BEFORE any online correction: regressing on a target
that already contains the bandit's own correction would make it chase half of the error
(the fixed point of ``delta = r - delta`` is ``r / 2``). Training queries enter only as a
light prior on the design matrix (``prior_weight``), so feedback corrects the predictor
quickly, and an LLM added at runtime starts with a wide confidence bound and gets explored.

``LinUCB`` is a value: ``copy`` gives an independent one, so an online state can be
updated copy-on-write and read without locks.
"""

from __future__ import annotations

import numpy as np


class LinUCB:
    """Per-LLM ridge models on features ``z`` of dimension ``dim``; Sherman-Morrison keeps A^-1.

    Arrays: ``A_inv`` (k, d, d), ``b`` (k, d), ``n_updates`` (k,), rows in ``llms`` order.
    """

    def __init__(self, dim: int, ridge: float = 1.0, prior_weight: float = 0.02):
        self.dim = dim
        self.ridge = ridge
        self.prior_weight = prior_weight
        self.llms: list[str] = []
        self.A_inv = np.zeros((0, dim, dim))
        self.b = np.zeros((0, dim))
        self.n_updates = np.zeros(0, dtype=np.int64)

    def copy(self) -> LinUCB:
        """An independent copy (arrays copied)."""
        out = LinUCB(self.dim, self.ridge, self.prior_weight)
        out.llms = list(self.llms)
        out.A_inv, out.b, out.n_updates = self.A_inv.copy(), self.b.copy(), self.n_updates.copy()
        return out

    def add(self, llm: str, Z_prior: np.ndarray | None = None) -> None:
        """Start a model for ``llm``; training features ``Z_prior`` (n, d) shape its prior."""
        A = self.ridge * np.eye(self.dim)
        if Z_prior is not None and len(Z_prior):
            A += self.prior_weight * Z_prior.T @ Z_prior
        self.llms.append(llm)
        self.A_inv = np.concatenate([self.A_inv, np.linalg.inv(A)[None]])
        self.b = np.concatenate([self.b, np.zeros((1, self.dim))])
        self.n_updates = np.append(self.n_updates, 0)

    def correction(self, Z: np.ndarray, llms: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(delta, width), each (n, len(llms)): learned residual and confidence width.

        ``llms`` picks and orders the columns; an LLM without a model gets delta 0 and the
        width of a fresh arm (``|z| / sqrt(ridge)``).
        """
        idx = [self.llms.index(m) if m in self.llms else -1 for m in llms]
        A_inv = np.stack([self.A_inv[i] if i >= 0 else np.eye(self.dim) / self.ridge for i in idx])
        b = np.stack([self.b[i] if i >= 0 else np.zeros(self.dim) for i in idx])
        theta = np.einsum("kde,ke->kd", A_inv, b)
        delta = Z @ theta.T
        AZ = np.einsum("kde,ne->nkd", A_inv, Z)
        width = np.sqrt(np.maximum(np.einsum("nkd,nd->nk", AZ, Z), 0.0))
        return delta, width

    def update(self, llm: str, z: np.ndarray, residual: float, weight: float = 1.0) -> None:
        """Add one observation: ``residual`` = observed quality - offline prediction at ``z``."""
        if llm not in self.llms:
            self.add(llm)
        j = self.llms.index(llm)
        z = np.asarray(z, dtype=float) * np.sqrt(weight)
        Ainv = self.A_inv[j]
        Az = Ainv @ z
        self.A_inv[j] = Ainv - np.outer(Az, Az) / (1.0 + z @ Az)
        self.b[j] += np.sqrt(weight) * residual * z
        self.n_updates[j] += 1

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for a save format (``llms`` as a string array)."""
        return {
            "llms": np.array(self.llms, dtype=str),
            "A_inv": self.A_inv,
            "b": self.b,
            "n_updates": self.n_updates,
            "hyper": np.array([self.dim, self.ridge, self.prior_weight], dtype=float),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LinUCB:
        """Inverse of ``to_arrays``."""
        dim, ridge, prior_weight = arrays["hyper"].tolist()
        out = cls(int(dim), ridge, prior_weight)
        out.llms = [str(m) for m in arrays["llms"].tolist()]
        out.A_inv = np.asarray(arrays["A_inv"], dtype=float).reshape(len(out.llms), out.dim, -1)
        out.b = np.asarray(arrays["b"], dtype=float).reshape(len(out.llms), out.dim)
        out.n_updates = np.asarray(arrays["n_updates"], dtype=np.int64)
        return out
