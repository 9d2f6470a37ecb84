"""`mixllm benchmark --only tags`: the leave-one-task-out tagging comparison refreshes its own
section inside the quality section and leaves everything else alone (hash encoder, tiny data)."""

from __future__ import annotations

import pytest
from _routing import LLMS, fast_config, price_table
from test_cli import write_routerbench
from typer.testing import CliRunner

from mixllm.core.config import MixLLMConfig
from mixllm.data.splits import split
from mixllm.evaluation.fidelity import FidelityRow
from mixllm.tools.bench_quality import (
    IN_DOMAIN_SECTION,
    TAG_CHOICES,
    TAGS_SECTION,
    fidelity_across_splits,
    other_splits,
)
from mixllm.tools.cli import app
from mixllm.tools.sections import markers

pytestmark = pytest.mark.timeout(180)


def _args(tmp_path, out, part: str = "tags") -> list[str]:
    price_table().save(tmp_path / "prices.yaml")
    cfg = fast_config().model_copy(update={"prices_path": str(tmp_path / "prices.yaml")})
    cfg.to_yaml(tmp_path / "config.yaml")
    data = write_routerbench(tmp_path / "bench.csv")
    only = ["benchmark", "--only", part, "--data", str(data), "--out", str(out)]
    return [*only, "--config", str(tmp_path / "config.yaml")]


def test_only_tags_rewrites_just_its_nested_section(tmp_path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    start, end = markers(TAGS_SECTION)
    out.write_text(
        "# MixLLM benchmarks\n\nthe main tables\n\n<!-- quality:start -->\n## Quality\n"
        f"the peers table\n{start}\nold tag numbers\n{end}\n\n<!-- quality:end -->\n"
    )
    result = CliRunner().invoke(app, _args(tmp_path, out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "old tag numbers" not in text
    assert "the main tables" in text and "the peers table" in text
    inner = text[text.index(start) : text.index(end)]
    assert "### Tags: leave one task out" in inner
    for label in TAG_CHOICES:  # one APGR row per tagging choice, one column per held-out task
        assert f"| {label} |" in inner
    assert "Smoke run" not in inner  # the whole data: a result
    assert text.index(end) < text.index("<!-- quality:end -->")


def test_a_limited_tags_run_says_it_is_a_smoke_run(tmp_path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    start, end = markers(TAGS_SECTION)
    out.write_text(f"<!-- quality:start -->\n{start}\nold\n{end}\n<!-- quality:end -->\n")
    result = CliRunner().invoke(app, [*_args(tmp_path, out), "--limit", "150"])
    assert result.exit_code == 0, result.output
    assert "Smoke run on a seeded sample of 150 queries (`--limit 150`): not a result" in (
        out.read_text()
    )


@pytest.mark.parametrize(
    "text",
    [
        "# MixLLM benchmarks\n\nthe main tables\n",
        # the tags markers alone, outside any quality section
        f"# MixLLM benchmarks\n\n{markers(TAGS_SECTION)[0]}\nx\n{markers(TAGS_SECTION)[1]}\n",
    ],
)
def test_only_tags_without_the_quality_section_names_the_fix(tmp_path, text) -> None:
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(text)
    result = CliRunner().invoke(app, _args(tmp_path, out))
    assert result.exit_code == 2
    assert "--only quality" in result.output and "Traceback" not in result.output
    assert out.read_text() == text


def test_only_tags_on_a_missing_file_says_so(tmp_path) -> None:
    out = tmp_path / "absent.md"
    result = CliRunner().invoke(app, _args(tmp_path, out))
    assert result.exit_code == 2 and "does not exist" in result.output
    assert not out.exists()


def test_the_quality_section_writes_every_table(tmp_path) -> None:
    """The whole quality section (peers with intervals, budget fidelity with an LLM added at
    runtime, out of domain, tags) end to end on tiny data, with the quick peers (each peer's
    own fit is tested in test_peers / test_baselines); the real-data smoke test runs the
    main sections."""
    from mixllm.tools.bench_quality import quality_section

    price_table().save(tmp_path / "prices.yaml")
    cfg = fast_config().model_copy(update={"prices_path": str(tmp_path / "prices.yaml")})
    data = write_routerbench(tmp_path / "bench.csv")
    peers = ("knn", "sw_ranking", "tag_mean")
    text = quality_section(str(data), tmp_path, cfg, n_boot=50, peers=peers, runtime_llm=LLMS[1])
    for heading in (
        "## Routing quality against the peers",
        "### In domain (held-out split)",
        "### Budget fidelity (held-out queries)",
        "### Out of domain: train on two tasks, test on the third",
        "### Tags: leave one task out",
    ):
        assert heading in text, heading
    for router in (*peers, "mixllm", "oracle"):
        assert f"| {router} |" in text, router
    assert f"| all + {LLMS[1]} added at runtime " in text
    assert "#### Budget fidelity across 4 splits (seeds 0, 1, 2, 3)" in text
    assert "- 25 % budget: mean error" in text
    assert "| mlp |" not in text
    assert (tmp_path / "pareto_quality.png").stat().st_size > 10_000


def test_only_in_domain_rewrites_just_its_nested_section(tmp_path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    start, end = markers(IN_DOMAIN_SECTION)
    tags_start, tags_end = markers(TAGS_SECTION)
    before = "# MixLLM benchmarks\n\nthe main tables\n\n<!-- quality:start -->\n"
    after = (
        f"\n\nthe out-of-domain table\n{tags_start}\nthe tags table\n{tags_end}\n"
        "<!-- quality:end -->\n"
    )
    out.write_text(f"{before}{start}\nold peers table\n{end}{after}")
    result = CliRunner().invoke(app, _args(tmp_path, out, "in-domain"))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "old peers table" not in text
    # everything outside the section is kept byte for byte
    assert text.startswith(before + start) and text.endswith(end + after)
    inner = text[text.index(start) : text.index(end)]
    for heading in (
        "### In domain (held-out split)",
        "### Budget fidelity (held-out queries)",
        "#### Budget fidelity across 4 splits",
    ):
        assert heading in inner, heading
    assert text.index(end) < text.index("the out-of-domain table")


def test_only_in_domain_without_its_section_names_the_fix(tmp_path) -> None:
    out = tmp_path / "BENCHMARKS.md"
    text = "# MixLLM benchmarks\n\n<!-- quality:start -->\nold\n<!-- quality:end -->\n"
    out.write_text(text)
    result = CliRunner().invoke(app, _args(tmp_path, out, "in-domain"))
    assert result.exit_code == 2
    assert "--only quality" in result.output and "Traceback" not in result.output
    assert out.read_text() == text


def _row(label: str, pct: float, spend: float, binding: bool = True) -> FidelityRow:
    """A cell with a budget of $1 (error = spend - 1); ``binding=False``: the set never
    spends more than $0.9, so the budget cannot bind."""
    return FidelityRow(label, pct, 1.0, spend, spend, 2.0 if binding else 0.9, 0.1)


def test_fidelity_across_splits_pools_the_binding_cells_of_each_split() -> None:
    rows = [
        _row("all", 10.0, 0.8),  # -20 %: outside the tolerance
        _row("all", 25.0, 1.05),  # +5 %
        _row("gpt + cheap", 10.0, 0.5, binding=False),  # cannot bind: left out
        _row("all + x added at runtime", 10.0, 0.1),  # runtime rows are not repeated
    ]
    text = "\n".join(fidelity_across_splits(None, MixLLMConfig(), (), rows))
    assert "| all | -20.0 % [-20, -20] (0/1) | +5.0 % [+5, +5] (1/1) | - |" in text
    assert "gpt + cheap" not in text and "added at runtime" not in text
    assert "- 10 % budget: mean error -20.0 % over 1 cells of 1 splits; 0 of them" in text


def test_each_extra_split_holds_out_other_queries(tmp_path) -> None:
    from mixllm.data.loaders import load_routerbench

    data = load_routerbench(write_routerbench(tmp_path / "bench.csv"))
    cfg = MixLLMConfig()
    held = {cfg.train.seed: set(split(data, cfg)[1].queries["sample_id"])}
    for c, train, test in other_splits(data, cfg, (1, 2)):
        ids = set(test.queries["sample_id"])
        assert not ids & set(train.queries["sample_id"])
        assert all(ids != other for other in held.values()), c.train.seed
        held[c.train.seed] = ids
    assert sorted(held) == [0, 1, 2]


def test_the_main_split_is_not_counted_twice() -> None:
    rows = [_row("all", 25.0, 1.05)]
    cfg = MixLLMConfig().updated({"train": {"seed": 1}})
    text = "\n".join(fidelity_across_splits(None, cfg, (1, 1), rows))
    assert "#### Budget fidelity across 1 splits (seeds 1)" in text
