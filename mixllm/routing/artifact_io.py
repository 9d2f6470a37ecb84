"""The save format of a ``TrainedRouter`` (format version 2): plain files, no pickles.

```
<dir>/
  meta.json        {"format": "mixllm-router", "format_version": 2, "mixllm_version",
                    "llms", "reference_llm", "lambda", "saved_at"}
  config.yaml      the MixLLMConfig it was trained with
  prices.yaml      the price table of its LLMs
  model.json       prior quality and service time per LLM, budget calibration, tag prior
  arrays.npz       feature map (PCA mean, components, scale, tag vocabulary) and the
                   LinUCB prior (llms, A_inv, b, n_updates, hyper); read without pickle
  tagger.yaml      tagger kind, settings and taxonomy
  encoder/         the (fine-tuned) encoder, see ``mixllm.routing.encoder.save_encoder``
  predictors/      LightGBM text models + index.json
  online_state.json  optional: an online state snapshot (``OnlineState.to_dict``)
  calibration_rows.npz  optional (added within version 2): the calibration rows that
                   re-calibrate lambda per candidate set (``CalibrationRows``), arrays
                   quality_hat and output_tokens_hat (n, k trained LLMs; out-of-sample
                   predictions), Z (n, d bandit context), tokens (n, 2 prompt/output),
                   cost ($) and quality (n, k recorded, NaN unobserved); read without
                   pickle. Absent: the global calibration in model.json is used for
                   every candidate set.
```
Loading checks ``format`` and ``format_version`` first and names what is wrong.
"""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

from mixllm.core.config import MixLLMConfig
from mixllm.core.errors import NotFittedError
from mixllm.core.prices import PriceTable
from mixllm.routing.artifact import CalibrationRows, OfflineEstimate, TrainedRouter
from mixllm.routing.bandit import LinUCB
from mixllm.routing.decision import BudgetCalibration
from mixllm.routing.encoder import load_encoder, save_encoder
from mixllm.routing.features import FeatureMap
from mixllm.routing.latency import ServiceTime
from mixllm.routing.predictors import LGBMPredictors, TagPrior
from mixllm.routing.state import OnlineState
from mixllm.routing.tagging import tagger_from_dict
from mixllm.routing.training import cache_dir as training_cache_dir

FORMAT = "mixllm-router"
FORMAT_VERSION = 2
STATE_FILE = "online_state.json"
ROWS_FILE = "calibration_rows.npz"


def save_router(model: TrainedRouter, path: str | Path, state: OnlineState | None = None) -> Path:
    """Write ``model`` (and optionally an online-state snapshot) to directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_encoder(model.encoder, path / "encoder")
    model.predictors.save(path / "predictors")
    model.config.to_yaml(path / "config.yaml")
    model.prices.save(path / "prices.yaml")
    (path / "tagger.yaml").write_text(yaml.safe_dump(model.tagger.to_dict(), sort_keys=False))
    arrays = {f"features.{k}": v for k, v in model.features.to_arrays().items()}
    arrays |= {f"bandit.{k}": v for k, v in model.bandit_prior.to_arrays().items()}
    np.savez(path / "arrays.npz", **arrays)
    (path / "model.json").write_text(json.dumps(_model_json(model), indent=1))
    if state is not None:
        (path / STATE_FILE).write_text(json.dumps(state.to_dict()))
    if model.calibration_rows is not None:
        _save_rows(model.calibration_rows, path / ROWS_FILE)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mixllm_version": _version(),
        "llms": list(model.llms),
        "reference_llm": model.reference_llm,
        "lambda": model.lambda_,
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (path / "meta.json").write_text(json.dumps(meta, indent=2))
    return path


def _model_json(model: TrainedRouter) -> dict:
    cal = model.calibration
    return {
        "prior_quality": dict(model.prior_quality),
        "service": {m: vars(s) for m, s in model.service.items()},
        "calibration": {
            "lambdas": cal.lambdas.tolist(),
            "mean_cost": [c if np.isfinite(c) else None for c in cal.mean_cost.tolist()],
            "mean_quality": [q if np.isfinite(q) else None for q in cal.mean_quality.tolist()],
            "reference_cost": cal.reference_cost,
        },
        "tag_prior": None if model.tag_prior is None else model.tag_prior.to_dict(),
    }


def _version() -> str:
    try:
        return metadata.version("mixllm")
    except metadata.PackageNotFoundError:
        return "unknown"


def read_meta(path: str | Path) -> dict:
    """``meta.json`` of a saved router, its format checked; raises ``NotFittedError``."""
    path = Path(path)
    meta_file = path / "meta.json"
    if not meta_file.exists():
        raise NotFittedError(f"no saved router at {path} (meta.json missing)")
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError as exc:
        raise NotFittedError(f"router at {path}: meta.json is not valid JSON ({exc})") from None
    if meta.get("format_version") != FORMAT_VERSION or meta.get("format", FORMAT) != FORMAT:
        raise NotFittedError(
            f"router at {path} has format {meta.get('format', '?')} "
            f"version {meta.get('format_version')}, this mixllm reads {FORMAT} "
            f"version {FORMAT_VERSION}: retrain it or load it with the mixllm that saved it"
        )
    return meta


def load_router(
    path: str | Path, cache_dir: str | Path | None = None, encoder_threads: int | None = None
) -> tuple[TrainedRouter, OnlineState | None]:
    """Load what ``save_router`` wrote: the trained router and the state snapshot, if any.

    ``encoder_threads`` overrides the saved ``encoder.threads`` (a training setting) for
    where the router is loaded: n ONNX Runtime threads, 0 its default (one per core), None
    as saved. Given at load, the session is built once, with the threads it will serve on.
    """
    path = Path(path)
    meta = read_meta(path)
    try:
        config = MixLLMConfig.from_yaml(path / "config.yaml")
        raw = json.loads((path / "model.json").read_text())
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        encoder = load_encoder(
            path / "encoder",
            cache_dir=cache_dir or training_cache_dir(config),
            backend=config.encoder.backend,
            threads=config.encoder.threads if encoder_threads is None else encoder_threads or None,
        )
        tagger = tagger_from_dict(yaml.safe_load((path / "tagger.yaml").read_text()))
        model = TrainedRouter(
            config=config,
            encoder=encoder,
            tagger=tagger.fit(encoder),
            features=FeatureMap.from_arrays(_prefixed(arrays, "features.")),
            tag_prior=None if raw["tag_prior"] is None else TagPrior.from_dict(raw["tag_prior"]),
            predictors=LGBMPredictors.load(path / "predictors", config.predictor),
            calibration=_calibration(raw["calibration"]),
            prices=PriceTable.load(path / "prices.yaml"),
            service={m: ServiceTime(**s) for m, s in raw["service"].items()},
            prior_quality={m: float(q) for m, q in raw["prior_quality"].items()},
            llms=tuple(meta["llms"]),
            reference_llm=meta["reference_llm"],
            bandit_prior=LinUCB.from_arrays(_prefixed(arrays, "bandit.")),
            calibration_rows=_load_rows(path / ROWS_FILE),
        )
    except (OSError, KeyError, ValueError, TypeError, zipfile.BadZipFile) as exc:
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise NotFittedError(f"router at {path} is incomplete or damaged: {what}") from None
    state_file = path / STATE_FILE
    if not state_file.exists():
        return model, None
    try:
        return model, OnlineState.from_dict(json.loads(state_file.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise NotFittedError(f"router at {path}: {STATE_FILE} is damaged ({exc})") from None


def _prefixed(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}


def _calibration(raw: dict) -> BudgetCalibration:
    def arr(xs: list) -> np.ndarray:
        return np.array([np.inf if x is None else x for x in xs], dtype=float)

    return BudgetCalibration(
        np.asarray(raw["lambdas"], dtype=float),
        arr(raw["mean_cost"]),
        np.array([np.nan if x is None else x for x in raw["mean_quality"]], dtype=float),
        float(raw["reference_cost"]),
    )


def _save_rows(rows: CalibrationRows, file: Path) -> None:
    np.savez(
        file,
        quality_hat=rows.offline.quality,
        output_tokens_hat=rows.offline.output_tokens,
        Z=rows.offline.Z,
        tokens=rows.tokens,
        cost=rows.cost,
        quality=rows.quality,
    )


def _load_rows(file: Path) -> CalibrationRows | None:
    if not file.exists():
        return None
    with np.load(file, allow_pickle=False) as npz:
        a = {k: npz[k] for k in npz.files}
    n = a["tokens"].shape[0]
    off = OfflineEstimate(a["quality_hat"], a["output_tokens_hat"], np.empty((n, 0)), a["Z"])
    return CalibrationRows(off, a["tokens"], a["cost"], a["quality"])
