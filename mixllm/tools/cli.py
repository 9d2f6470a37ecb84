"""`mixllm` library commands: train, evaluate, route, prices, benchmark (no Prefect/BentoML)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from mixllm.core.errors import MixLLMError

app = typer.Typer(
    name="mixllm",
    help="MixLLM: route each query to the LLM with the best quality for its cost and latency.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

DataOpt = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="RouterBench/long/MESS+ file, directory or hf:// path "
        "(default: $MIXLLM_DATA or ../shared/data/routerbench)",
    ),
]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="MixLLM config YAML")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _fail(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def load_config(path: Path | None):
    """The config from ``path`` or the defaults."""
    from mixllm.core.config import MixLLMConfig

    return MixLLMConfig.from_yaml(path) if path else MixLLMConfig()


def resolve_data(data: str | None) -> str:
    """The data location: the option, else the default (env or ../shared)."""
    from mixllm.core.paths import default_data_path

    return data or str(default_data_path())


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", help="directory to save the router in")],
    data: DataOpt = None,
    config: ConfigOpt = None,
    all_rows: Annotated[
        bool,
        typer.Option("--all-rows", help="production: train on every row, no hold-out split"),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Train a router on the training split of DATA and save it to OUT.

    With ``--all-rows`` (production) nothing is held out for ``mixllm evaluate``: the
    router still keeps ``train.calibration_size`` of its rows aside inside training (early
    stopping and the budget -> lambda calibration, saved with it), then refits the
    predictors on every row (``train.refit_full``).
    """
    _setup_logging(verbose)
    try:
        import numpy as np

        from mixllm.data.loaders import load_data
        from mixllm.data.splits import make_record, split
        from mixllm.routing.router import MixLLMRouter

        cfg = load_config(config)
        path = resolve_data(data)
        full = load_data(path)
        typer.echo(full.report.summary() if full.report else f"loaded {len(full)} queries")
        tr, te = (full, full.subset(np.array([], dtype=int))) if all_rows else split(full, cfg)
        router = MixLLMRouter(cfg).fit(tr)
        router.save(out)
        make_record(path, full, tr, te, cfg).save(out)
    except (MixLLMError, OSError) as exc:
        _fail(exc)
    typer.echo(
        f"saved router to {out}: {len(router.llms_)} LLMs, trained on {len(tr)} queries, "
        f"{len(te)} held out; reference {router.reference_llm_}, lambda {router.lambda_:.4g}"
    )


@app.command()
def evaluate(
    router: Annotated[Path, typer.Option("--router", help="directory of a saved router")],
    data: DataOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    plot: Annotated[Path | None, typer.Option("--plot", help="write the Pareto PNG here")] = None,
    candidates: Annotated[
        str | None,
        typer.Option("--candidates", help="comma-separated LLMs to limit every router to"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Evaluate a saved router and every baseline on the queries of DATA it never saw.

    DATA may hold fewer LLMs than the router: every router is then limited to the LLMs
    present (a note says which were left out).
    """
    _setup_logging(verbose)
    try:
        from mixllm.data.loaders import load_data
        from mixllm.data.splits import TrainingRecord, held_out, training_data
        from mixllm.evaluation.evaluate import evaluate_router
        from mixllm.routing.router import MixLLMRouter

        model = MixLLMRouter.load(router)
        record = TrainingRecord.load(router)
        test = held_out(record, load_data(resolve_data(data)))
        names = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
        report = evaluate_router(
            model, training_data(record), test, progress=not as_json, candidates=names
        )
        for note in report.notes:
            typer.echo(f"note: {note}", err=True)
    except (MixLLMError, OSError) as exc:
        _fail(exc)
    if plot:
        report.plot_pareto(plot)
    typer.echo(json.dumps(report.to_json(), indent=2) if as_json else report.to_markdown())


@app.command()
def route(
    query: Annotated[str, typer.Argument(help="the query text")],
    router: Annotated[Path, typer.Option("--router", help="directory of a saved router")],
    budget_pct: Annotated[
        float | None, typer.Option("--budget-pct", help="% of the reference LLM's cost")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget", "--budget-usd", help="dollars per query")
    ] = None,
    candidates: Annotated[
        str | None, typer.Option("--candidates", help="comma-separated LLM names")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Pick the LLM for QUERY and show every candidate's predictions."""
    _setup_logging(False)
    try:
        from mixllm.core.text import check_text
        from mixllm.routing.router import MixLLMRouter

        # Same policy as the service: text that is not valid Unicode is refused (raw
        # non-UTF-8 bytes in argv arrive as lone surrogates through surrogateescape).
        check_text(query, "query")
        model = MixLLMRouter.load(router)
        names = [c.strip() for c in candidates.split(",")] if candidates else None
        decision = model.route(
            query, budget_usd=budget_usd, budget_pct=budget_pct, candidates=names
        )
    except (MixLLMError, OSError) as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(decision.to_dict(), indent=2))
        return
    typer.echo(f"chosen: {decision.llm}")
    typer.echo(f"tags:   {', '.join(decision.tags)}")
    typer.echo(f"budget: ${decision.budget_usd:.6f}/query (lambda {decision.lambda_:.4g})")
    typer.echo(f"{'LLM':<36} {'quality':>8} {'cost $':>10} {'latency s':>9} {'±':>6} {'score':>8}")
    for c in sorted(decision.candidates, key=lambda c: -c.score):
        mark = "*" if c.llm == decision.llm else " "
        typer.echo(
            f"{mark}{c.llm:<35} {c.quality:8.3f} {c.cost:10.6f} {c.latency_s:9.2f} "
            f"{c.uncertainty:6.3f} {c.score:8.3f}"
        )


@app.command()
def prices(data: DataOpt = None) -> None:
    """Derive per-token prices from DATA's recorded costs and compare with the price table."""
    _setup_logging(False)
    try:
        from mixllm.core.prices import price_report
        from mixllm.data.loaders import load_data

        report = price_report(load_data(resolve_data(data)))
    except (MixLLMError, OSError) as exc:
        _fail(exc)
    typer.echo(report.to_string(index=False))


BENCHMARK_PARTS = ("main", "quality", "in-domain", "tags", "continual")  # what --only may re-run


@app.command()
def benchmark(
    data: DataOpt = None,
    out: Annotated[Path, typer.Option("--out", help="markdown report")] = Path(
        "docs/BENCHMARKS.md"
    ),
    messplus: Annotated[
        str | None, typer.Option("--messplus", help="MESS+ latency file (default: ../shared)")
    ] = None,
    config: ConfigOpt = None,
    limit: Annotated[
        int | None, typer.Option("--limit", help="sample this many queries (smoke runs)")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="re-run one part, keep the rest: 'main' (tables, ablations, latency, "
            "speed), 'quality' (peers, intervals, out of domain, budget fidelity), "
            "'in-domain' (peers, intervals and budget fidelity, inside quality), 'tags' "
            "(leave-one-task-out per tagging choice, inside quality), 'continual'",
        ),
    ] = None,
    continual_size: Annotated[
        str,
        typer.Option("--continual-size", help="continual section: full (committed), quick, skip"),
    ] = "full",
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Regenerate docs/BENCHMARKS.md: quality/cost tables, ablations, latency, speed, plot,
    and the continual-learning section."""
    _setup_logging(verbose)
    try:
        from mixllm.tools.benchmark import run_benchmark, run_continual_section
        from mixllm.tools.continual_experiments import ContinualSize

        cfg = load_config(config) if config else None
        sizes = {"full": ContinualSize(), "quick": ContinualSize.quick(), "skip": None}
        if continual_size not in sizes or only not in (None, *BENCHMARK_PARTS):
            raise typer.BadParameter(
                f"--continual-size: full|quick|skip; --only: {'|'.join(BENCHMARK_PARTS)}"
            )
        if only == "continual":
            size = sizes[continual_size] or ContinualSize()
            path = run_continual_section(resolve_data(data), out, messplus, cfg, size)
        elif only == "quality":
            from mixllm.tools.bench_quality import write_quality_section

            path = write_quality_section(resolve_data(data), out, cfg, limit)
        elif only == "in-domain":
            from mixllm.tools.bench_quality import write_in_domain_section

            path = write_in_domain_section(resolve_data(data), out, cfg, limit)
        elif only == "tags":
            from mixllm.tools.bench_quality import write_tags_section

            path = write_tags_section(resolve_data(data), out, cfg, limit)
        else:
            continual = None if only == "main" else sizes[continual_size]
            path = run_benchmark(resolve_data(data), out, messplus, cfg, limit, continual,
                                 quality=only != "main")  # fmt: skip
    except (MixLLMError, OSError) as exc:
        _fail(exc)
    typer.echo(f"wrote {path}")


@app.command("benchmark-encoders")
def benchmark_encoders(
    data: DataOpt = None,
    out: Annotated[Path, typer.Option("--out", help="markdown report")] = Path(
        "docs/BENCHMARKS.md"
    ),
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Routing quality (AIQ, quality at the default budget) and embedding speed of one trained
    router under each encoder backend (torch, onnx, onnx-int8) on the held-out split; writes
    the "Encoder backends" section of --out and its numbers as JSON next to it."""
    _setup_logging(verbose)
    try:
        import os

        from mixllm.tools.encoder_backends import compare_backends, render_section
        from mixllm.tools.sections import upsert_section

        results = compare_backends(resolve_data(data), load_config(config) if config else None)
        command = "mixllm benchmark-encoders" + (f" --data {data}" if data else "")
        note = f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end."
        upsert_section(out, "encoders", render_section(results, command, note))
        out.with_name(out.stem + ".encoders.json").write_text(json.dumps(results, indent=2))
    except (MixLLMError, OSError) as exc:
        _fail(exc)
    for backend, row in results["backends"].items():
        typer.echo(f"{backend}: {json.dumps(row)}")
    typer.echo(f"wrote {out}")


def main() -> None:  # pragma: no cover - console entry for `python -m mixllm.tools.cli`
    """Run the CLI."""
    app(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    main()
