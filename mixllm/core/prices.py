"""Per-LLM prices ($ per token), speed and concurrency; their derivation from recorded costs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mixllm.core.errors import ConfigError, DataError, UnknownLLMError
from mixllm.core.types import RoutingData

logger = logging.getLogger(__name__)

PRICES_RESOURCE = "prices.yaml"


class LLMSpec(BaseModel):
    """Price, speed and parallelism of one LLM endpoint."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    input_price: float = Field(ge=0, allow_inf_nan=False)  # $ per prompt token
    output_price: float = Field(ge=0, allow_inf_nan=False)  # $ per generated token
    # Generic fallbacks for an endpoint nobody measured; the packaged table sets all three.
    tokens_per_s: float = Field(50.0, gt=0, allow_inf_nan=False)  # decode speed
    ttft_s: float = Field(0.5, ge=0, allow_inf_nan=False)  # time to first token
    concurrency: int = Field(8, ge=1)  # requests served in parallel
    # Most tokens one request may hold (prompt + answer), as the vendor publishes it;
    # None: unknown, never excluded for length (see mixllm.routing.context).
    context_window: int | None = Field(None, ge=1)
    notes: str | None = None

    def cost(
        self, prompt_tokens: float | np.ndarray, output_tokens: float | np.ndarray
    ) -> np.ndarray:
        """Dollars for the given token counts (scalars or arrays)."""
        return self.input_price * np.asarray(prompt_tokens, dtype=float) + (
            self.output_price * np.asarray(output_tokens, dtype=float)
        )


class PriceTable(Mapping[str, LLMSpec]):
    """LLM name -> LLMSpec, loaded from and saved to YAML."""

    def __init__(self, specs: Iterable[LLMSpec] = ()) -> None:
        self._specs: dict[str, LLMSpec] = {}
        for spec in specs:
            self.add(spec)

    def __getitem__(self, name: str) -> LLMSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownLLMError(
                f"no price for LLM {name!r}; known: {', '.join(self._specs)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __repr__(self) -> str:
        return f"PriceTable({list(self._specs)})"

    def add(self, spec: LLMSpec) -> None:
        """Add or replace the entry of ``spec.name``."""
        self._specs[spec.name] = spec

    def remove(self, name: str) -> None:
        """Drop an entry (UnknownLLMError if absent)."""
        self[name]  # raises the domain error for an unknown name
        del self._specs[name]

    def cost(
        self, llm: str, prompt_tokens: float | np.ndarray, output_tokens: float | np.ndarray
    ) -> float | np.ndarray:
        """Dollars for ``llm`` at these token counts; arrays broadcast, scalars give a float."""
        out = self[llm].cost(prompt_tokens, output_tokens)
        return float(out) if np.ndim(out) == 0 else out

    def cost_matrix(
        self, llms: list[str], prompt_tokens: np.ndarray, output_tokens: np.ndarray
    ) -> np.ndarray:
        """(n, k) dollars: prompt_tokens (n,) shared by all LLMs, output_tokens (n, k) or (n,)."""
        self.validate_llms(llms)
        inp = np.array([self._specs[m].input_price for m in llms])
        out = np.array([self._specs[m].output_price for m in llms])
        prompt = np.asarray(prompt_tokens, dtype=float).reshape(-1, 1)
        output = np.asarray(output_tokens, dtype=float)
        if output.ndim == 1:
            output = output[:, None]
        return prompt * inp + output * out

    def validate_llms(self, llms: Iterable[str]) -> None:
        """ConfigError naming every LLM that has no entry in the table."""
        unknown = [m for m in llms if m not in self._specs]
        if unknown:
            raise ConfigError(
                f"price table has no entry for: {', '.join(unknown)}; "
                f"known: {', '.join(self._specs)}"
            )

    def to_dict(self) -> dict[str, dict[str, object]]:
        """The YAML structure: {"llms": {name: fields without name}}."""
        return {
            "llms": {
                name: spec.model_dump(exclude={"name"}, exclude_none=True)
                for name, spec in self._specs.items()
            }
        }

    @classmethod
    def from_dict(cls, raw: object, source: str = "price table") -> PriceTable:
        """Validate the YAML structure; any problem is a ConfigError naming the entry."""
        if not isinstance(raw, dict) or not isinstance(raw.get("llms"), dict):
            raise ConfigError(f"{source}: expected a mapping with an 'llms' mapping at the top")
        extra = set(raw) - {"llms"}
        if extra:
            raise ConfigError(f"{source}: unknown top-level keys: {', '.join(sorted(extra))}")
        specs = []
        for name, fields in raw["llms"].items():
            if not isinstance(fields, dict):
                raise ConfigError(f"{source}: entry {name!r} must be a mapping")
            if fields.get("name", name) != name:
                raise ConfigError(f"{source}: entry {name!r} has a different name field")
            try:
                specs.append(LLMSpec.model_validate({**fields, "name": str(name)}))
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                )
                raise ConfigError(f"{source}: invalid entry {name!r}: {problems}") from exc
        return cls(specs)

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceTable:
        """Read a price YAML; None reads the packaged RouterBench + MESS+ table."""
        if path is None:
            text = resources.files("mixllm").joinpath("resources", PRICES_RESOURCE).read_text()
            source = f"packaged {PRICES_RESOURCE}"
        else:
            source = str(path)
            try:
                text = Path(path).read_text()
            except OSError as exc:
                raise ConfigError(f"cannot read price table {path}: {exc}") from exc
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
        return cls.from_dict(raw, source)

    def save(self, path: str | Path) -> None:
        """Write the table as YAML (loadable with ``load_prices``)."""
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def to_frame(self) -> pd.DataFrame:
        """One row per LLM, prices also shown in $ per million tokens."""
        frame = pd.DataFrame([s.model_dump() for s in self._specs.values()])
        frame["input_per_mtok"] = frame["input_price"] * 1e6
        frame["output_per_mtok"] = frame["output_price"] * 1e6
        return frame


def load_prices(path: str | Path | None = None) -> PriceTable:
    """The price table at ``path``, or the packaged one when None."""
    return PriceTable.load(path)


# --------------------------------------------------------------------------- derivation


def _fit_rows(data: RoutingData, j: int) -> tuple[np.ndarray, np.ndarray]:
    """Token design matrix and recorded cost of LLM column ``j``, finite and priced rows only."""
    if data.output_tokens is None:
        raise DataError("derive_prices needs output_tokens (recorded answers) in the data")
    prompt = data.queries["prompt_tokens"].to_numpy(dtype=float)
    tokens = np.column_stack([prompt, data.output_tokens[:, j]])
    cost = data.cost[:, j]
    ok = np.isfinite(tokens).all(axis=1) & np.isfinite(cost) & (cost > 0)
    return tokens[ok], cost[ok]


def _nnls_relative(tokens: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Non-negative prices minimising the squared *relative* error of the predicted cost.

    Rows are divided by their cost: cheap short queries count as much as expensive ones,
    which matches how the router compares LLMs (ratios, not absolute dollars).
    """
    from scipy.optimize import nnls

    design = tokens / cost[:, None]
    scale = np.linalg.norm(design, axis=0)
    scale[scale == 0] = 1.0  # an all-zero column (no output ever) keeps price 0
    coef, _ = nnls(design / scale, np.ones(len(cost)))
    return coef / scale


def derive_prices(data: RoutingData, min_rows: int = 2) -> dict[str, tuple[float, float, float]]:
    """Per LLM, (input $/token, output $/token, mean relative error) fitted to recorded cost."""
    out: dict[str, tuple[float, float, float]] = {}
    for j, llm in enumerate(data.llms):
        tokens, cost = _fit_rows(data, j)
        if len(cost) < min_rows:
            logger.warning("derive_prices: %s has %d priced rows, skipped", llm, len(cost))
            continue
        input_price, output_price = _nnls_relative(tokens, cost)
        predicted = tokens @ np.array([input_price, output_price])
        rel_error = float(np.mean(np.abs(predicted - cost) / cost))
        out[llm] = (float(input_price), float(output_price), rel_error)
    return out


def prices_from_rows(data: RoutingData, base: PriceTable) -> PriceTable:
    """``base`` with the $/token prices re-derived from ``data``'s recorded costs only.

    Evaluation passes its TRAINING rows so that no router's cost estimate has seen the
    held-out costs; speed, concurrency and LLMs ``data`` cannot price stay as in ``base``.
    """
    derived = derive_prices(data)
    table = PriceTable(base.values())
    for llm, (input_price, output_price, _) in derived.items():
        spec = base[llm] if llm in base else LLMSpec(name=llm, input_price=0, output_price=0)
        table.add(
            spec.model_copy(update={"input_price": input_price, "output_price": output_price})
        )
    return table


def price_report(data: RoutingData, prices: PriceTable | None = None) -> pd.DataFrame:
    """Derived prices per LLM with recorded vs predicted mean cost and the fit's relative error.

    With ``prices`` the predicted cost uses that table instead of the fitted prices, which
    checks a saved table against the data.
    """
    rows = []
    derived = derive_prices(data)
    if prices is not None:
        prices.validate_llms(derived)
    for j, llm in enumerate(data.llms):
        if llm not in derived:
            continue
        tokens, cost = _fit_rows(data, j)
        inp, outp, _ = derived[llm]
        if prices is not None:
            inp, outp = prices[llm].input_price, prices[llm].output_price
        predicted = tokens @ np.array([inp, outp])
        rows.append(
            {
                "llm": llm,
                "input_price": inp,
                "output_price": outp,
                "input_per_mtok": inp * 1e6,
                "output_per_mtok": outp * 1e6,
                "mean_cost": float(cost.mean()),
                "mean_predicted_cost": float(predicted.mean()),
                "mean_rel_error": float(np.mean(np.abs(predicted - cost) / cost)),
            }
        )
    return pd.DataFrame(rows)
