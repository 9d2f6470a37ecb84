"""`mixllm benchmark --only tags`: the leave-one-task-out tagging comparison refreshes its own
section inside the quality section and leaves everything else alone (hash encoder, tiny data)."""

from __future__ import annotations

import pytest
from _routing import LLMS, fast_config, price_table
from test_cli import write_routerbench
from typer.testing import CliRunner

from mixllm.tools.bench_quality import TAG_CHOICES, TAGS_SECTION
from mixllm.tools.cli import app
from mixllm.tools.sections import markers

pytestmark = pytest.mark.timeout(180)


def _args(tmp_path, out) -> list[str]:
    price_table().save(tmp_path / "prices.yaml")
    cfg = fast_config().model_copy(update={"prices_path": str(tmp_path / "prices.yaml")})
    cfg.to_yaml(tmp_path / "config.yaml")
    data = write_routerbench(tmp_path / "bench.csv")
    only = ["benchmark", "--only", "tags", "--data", str(data), "--out", str(out)]
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
    assert "| mlp |" not in text
    assert (tmp_path / "pareto_quality.png").stat().st_size > 10_000
