"""Price table: validation, YAML round trip, cost arithmetic, derivation from recorded cost."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from mixllm.core.errors import ConfigError, DataError, UnknownLLMError
from mixllm.core.prices import LLMSpec, PriceTable, derive_prices, load_prices, price_report
from mixllm.data.loaders import load_routerbench

ROUTERBENCH_LLMS = {
    "gpt-4-1106-preview",
    "gpt-3.5-turbo-1106",
    "claude-v1",
    "claude-v2",
    "claude-instant-v1",
    "meta/llama-2-70b-chat",
    "mistralai/mixtral-8x7b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "WizardLM/WizardLM-13B-V1.2",
    "meta/code-llama-instruct-34b-chat",
    "mistralai/mistral-7b-chat",
}
MESSPLUS_LLMS = {"llama-3.2-1b", "llama-3.1-8b", "llama-3.3-70b"}


def _table() -> PriceTable:
    return PriceTable(
        [
            LLMSpec(name="a", input_price=1e-6, output_price=2e-6),
            LLMSpec(name="b", input_price=3e-6, output_price=0.0, concurrency=2),
        ]
    )


def test_packaged_table_covers_routerbench_and_messplus() -> None:
    table = load_prices()
    assert set(table) == ROUTERBENCH_LLMS | MESSPLUS_LLMS
    for spec in table.values():
        assert spec.input_price > 0 and spec.output_price > 0
        assert spec.tokens_per_s > 0 and spec.concurrency >= 1
    gpt4, mistral = table["gpt-4-1106-preview"], table["mistralai/mistral-7b-chat"]
    assert gpt4.input_price > 10 * mistral.input_price


def test_spec_forbids_unknown_fields_and_negative_prices() -> None:
    with pytest.raises(ValidationError):
        LLMSpec(name="x", input_price=1e-6, output_price=1e-6, speed=3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        LLMSpec(name="x", input_price=-1.0, output_price=1e-6)


def test_from_dict_errors_name_the_entry() -> None:
    with pytest.raises(ConfigError, match=r"'bad'.*output_price: Field required"):
        PriceTable.from_dict({"llms": {"bad": {"input_price": 1e-6}}})
    with pytest.raises(ConfigError, match=r"'x'.*colour"):
        PriceTable.from_dict({"llms": {"x": {"input_price": 0, "output_price": 0, "colour": 1}}})
    with pytest.raises(ConfigError, match="'llms' mapping"):
        PriceTable.from_dict({"models": {}})
    with pytest.raises(ConfigError, match="unknown top-level keys: extra"):
        PriceTable.from_dict({"llms": {}, "extra": 1})


def test_save_load_round_trip(tmp_path) -> None:
    path = tmp_path / "prices.yaml"
    _table().save(path)
    loaded = load_prices(path)
    assert list(loaded) == ["a", "b"]
    assert loaded["b"] == _table()["b"]


def test_load_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read price table .*missing\.yaml"):
        load_prices(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("llms: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_prices(tmp_path / "bad.yaml")


def test_cost_arithmetic_scalar_and_vectorized() -> None:
    table = _table()
    assert table.cost("a", 100, 10) == pytest.approx(100 * 1e-6 + 10 * 2e-6)
    assert isinstance(table.cost("a", 100, 10), float)
    out = table.cost("a", np.array([100, 200]), np.array([10, 0]))
    np.testing.assert_allclose(out, [1.2e-4, 2e-4])
    matrix = table.cost_matrix(["a", "b"], np.array([100, 200]), np.array([[10, 10], [0, 5]]))
    np.testing.assert_allclose(matrix, [[1.2e-4, 3e-4], [2e-4, 6e-4]])
    assert table.cost_matrix(["b"], np.array([1.0]), np.array([5.0])).shape == (1, 1)


def test_unknown_llms() -> None:
    table = _table()
    with pytest.raises(ConfigError, match="no entry for: zed, yan"):
        table.validate_llms(["a", "zed", "yan"])
    table.validate_llms(["a", "b"])
    with pytest.raises(UnknownLLMError, match="'zed'"):
        table.cost("zed", 1, 1)
    with pytest.raises(KeyError):
        table["zed"]


def test_add_and_remove() -> None:
    table = _table()
    table.add(LLMSpec(name="c", input_price=0.0, output_price=0.0))
    table.remove("a")
    assert list(table) == ["b", "c"]
    with pytest.raises(UnknownLLMError):
        table.remove("a")


def test_derive_prices_recovers_known_prices(routerbench_csv, synth_prices) -> None:
    derived = derive_prices(load_routerbench(routerbench_csv))
    assert set(derived) == set(synth_prices)
    for llm, (inp, out) in synth_prices.items():
        got_in, got_out, rel_error = derived[llm]
        assert got_in == pytest.approx(inp, rel=1e-6)
        assert got_out == pytest.approx(out, rel=1e-6)
        assert rel_error < 1e-6


def test_derive_prices_with_noise_and_sparse_rows(make_routing_data) -> None:
    data = make_routing_data(n=200, llms=("x", "y"), seed=3)
    rng = np.random.default_rng(0)
    prompt = data.queries["prompt_tokens"].to_numpy()[:, None]
    data.cost = (prompt * [2e-6, 5e-7] + data.output_tokens * [6e-6, 5e-7]) * rng.uniform(
        0.98, 1.02, data.cost.shape
    )
    data.cost[:50, 1] = np.nan  # unobserved pairs are ignored
    derived = derive_prices(data)
    assert derived["x"][0] == pytest.approx(2e-6, rel=0.05)
    assert derived["x"][1] == pytest.approx(6e-6, rel=0.05)
    assert derived["y"][1] == pytest.approx(5e-7, rel=0.05)
    assert 0 < derived["x"][2] < 0.02


def test_derive_prices_needs_output_tokens(tiny_data) -> None:
    tiny_data.output_tokens = None
    with pytest.raises(DataError, match="output_tokens"):
        derive_prices(tiny_data)


def test_price_report(routerbench_csv, synth_prices) -> None:
    data = load_routerbench(routerbench_csv)
    report = price_report(data)
    assert report["llm"].tolist() == list(synth_prices)
    assert set(report.columns) >= {"input_price", "output_price", "mean_cost"}
    np.testing.assert_allclose(report["mean_predicted_cost"], report["mean_cost"], rtol=1e-6)
    assert (report["mean_rel_error"] < 1e-6).all()
    # Against a table with doubled prices the error shows up as 100%.
    doubled = PriceTable(
        LLMSpec(name=m, input_price=2 * i, output_price=2 * o) for m, (i, o) in synth_prices.items()
    )
    np.testing.assert_allclose(price_report(data, prices=doubled)["mean_rel_error"], 1.0)
