"""Settings fail when they are loaded, naming the variable; misspelt variables are named too."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError
from pydantic_settings import SettingsError

from automatos.phases.evaluate.heuristics import Dimensions
from automatos.phases.evaluate.quality import DEFAULT_WEIGHTS
from automatos.settings import (
    QUALITY_DIMENSIONS,
    ExecutionSettings,
    LLMSettings,
    ModelPrice,
    QualitySettings,
    Settings,
    describe_settings_error,
    env_warnings,
)


def test_the_dimensions_are_those_scored() -> None:
    assert set(QUALITY_DIMENSIONS) == {f.name for f in dataclasses.fields(Dimensions)}
    assert set(QUALITY_DIMENSIONS) == set(DEFAULT_WEIGHTS)
    assert QualitySettings().weights == DEFAULT_WEIGHTS


@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        ({"acuracy": 1.0}, r"unknown quality dimension 'acuracy' \(did you mean 'accuracy'\?\)"),
        ({"speed": 1.0}, "the dimensions are completeness, accuracy, efficiency, reliability"),
        ({"accuracy": -0.5, "coherence": 1.0}, "weight of 'accuracy' is -0.5"),
        ({"accuracy": float("nan")}, "weight of 'accuracy' is nan"),
        ({"accuracy": 0.0, "coherence": 0.0}, "every weight is zero"),
        ({}, "every weight is zero"),
    ],
)
def test_bad_weights_are_refused_when_loaded(weights: dict[str, float], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        QualitySettings(weights=weights)


def test_some_weights_may_be_left_out() -> None:
    assert QualitySettings(weights={"accuracy": 1.0, "coherence": 0.0}).weights["accuracy"] == 1


def test_a_bad_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_EXECUTION__MAX_CONCURRENCY", "0")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value) == (
        "AUTOMATOS_EXECUTION__MAX_CONCURRENCY: Input should be greater than 0 (got '0')"
    )


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("AUTOMATOS_LLM__BASE_URL", "not a url", "starts with http:// or https://"),
        ("AUTOMATOS_LLM__BASE_URL", "ftp://h/v1", "starts with http:// or https://"),
        ("AUTOMATOS_LLM__BASE_URL", "http://127.0.0.1:x/v1", "the port of an endpoint's URL"),
        ("AUTOMATOS_EMBEDDINGS__BASE_URL", "localhost:8080", "starts with http://"),
    ],
)
def test_an_endpoint_that_is_no_url_is_refused_when_loaded(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    said = describe_settings_error(caught.value)
    assert said.startswith(f"{variable}: ") and problem in said, said


def test_an_endpoint_url_is_kept_as_given() -> None:
    url = "https://openrouter.ai/api/v1"
    assert Settings.model_validate({"llm": {"base_url": f" {url}"}}).llm.base_url == url


@pytest.mark.parametrize("value", ["", "none", "unset"])
def test_an_endpoint_given_as_nothing_is_unset(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("AUTOMATOS_LLM__BASE_URL", value)
    monkeypatch.setenv("AUTOMATOS_EMBEDDINGS__BASE_URL", value)
    settings = Settings()
    assert settings.llm.base_url is None and settings.embeddings.base_url is None


def test_a_variable_in_lower_case_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("automatos_store__enabled", "maybe")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(
        "AUTOMATOS_STORE__ENABLED: Input should be a valid boolean"
    )


def test_a_json_variable_is_named_with_the_path_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AUTOMATOS_LLM__PRICES", '{"m": {"input_per_mtok": -1, "output_per_mtok": 1}}'
    )
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value) == (
        "AUTOMATOS_LLM__PRICES (m.input_per_mtok): Input should be greater than or equal to 0"
    )


def test_unparsable_json_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_QUALITY__WEIGHTS", "accuracy=1")
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(
        "AUTOMATOS_QUALITY__WEIGHTS: not valid JSON"
    )


def test_a_setting_given_in_code_is_named_by_its_path() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(execution={"max_concurrency": -1})  # type: ignore[arg-type]
    assert describe_settings_error(caught.value, environ={}) == (
        "setting execution.max_concurrency: Input should be greater than 0"
    )
    with pytest.raises(ValidationError):
        ExecutionSettings(max_concurrency=0)


def test_misspelt_variables_name_the_closest_setting() -> None:
    warnings = env_warnings(
        {
            "AUTOMATOS_EXECUTON__MAX_CONCURRENCY": "3",
            "AUTOMATOS_LLM__MODLE": "gpt-4o",
            "AUTOMATOS_NOTHING_LIKE_IT": "1",
            "AUTOMATOS_LLM__MODEL": "fine",
            "automatos_llm__provider": "openai",
            "AUTOMATOS_LLM": "{}",
            "AUTOMATOS_LLM__PRICES__GPT-X__INPUT_PER_MTOK": "1",
            "AUTOMATOS_QUALITY__WEIGHTS__ACCURACY": "1",
            "HOME": "/root",
        }
    )
    assert warnings == [
        "AUTOMATOS_EXECUTON__MAX_CONCURRENCY is not a setting and is ignored; did you mean "
        "AUTOMATOS_EXECUTION__MAX_CONCURRENCY?",
        "AUTOMATOS_LLM__MODLE is not a setting and is ignored; did you mean AUTOMATOS_LLM__MODEL?",
        "AUTOMATOS_NOTHING_LIKE_IT is not a setting and is ignored",
    ]


def test_every_setting_is_known() -> None:
    names = {
        f"AUTOMATOS_{section.upper()}__{name.upper()}": "1"
        for section, field in Settings.model_fields.items()
        for name in field.annotation.model_fields  # type: ignore[union-attr]
    }
    assert len(names) > 50
    assert env_warnings(names) == []


DEFAULTS = QualitySettings().weights


def test_one_weight_s_variable_changes_that_weight_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_QUALITY__WEIGHTS__COMPLETENESS", "0.5")
    monkeypatch.setenv("automatos_quality__weights__Coherence", "0")
    assert Settings().quality.weights == {**DEFAULTS, "completeness": 0.5, "coherence": 0.0}
    assert env_warnings() == []


def test_one_weight_s_variable_changes_the_json_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_QUALITY__WEIGHTS", '{"accuracy": 1, "coherence": 1}')
    monkeypatch.setenv("AUTOMATOS_QUALITY__WEIGHTS__COHERENCE", "0.5")
    assert Settings().quality.weights == {"accuracy": 1.0, "coherence": 0.5}
    monkeypatch.delenv("AUTOMATOS_QUALITY__WEIGHTS")
    monkeypatch.setenv("AUTOMATOS_QUALITY", '{"gate": 0.2, "weights": {"accuracy": 1}}')
    quality = Settings().quality
    assert (quality.gate, quality.weights) == (0.2, {"accuracy": 1.0, "coherence": 0.5})


def test_a_wrong_weight_s_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_QUALITY__WEIGHTS__ACURACY", "0.5")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(
        "AUTOMATOS_QUALITY__WEIGHTS__*: unknown quality dimension 'acuracy' "
        "(did you mean 'accuracy'?)"
    )
    monkeypatch.setenv("AUTOMATOS_QUALITY__WEIGHTS__ACURACY", "lots")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(
        "AUTOMATOS_QUALITY__WEIGHTS__ACURACY: Input should be a valid number"
    )


def test_one_model_s_price_keeps_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = LLMSettings().prices
    monkeypatch.setenv(
        "AUTOMATOS_LLM__PRICES__MY-MODEL", '{"input_per_mtok": 1, "output_per_mtok": 2}'
    )
    monkeypatch.setenv("AUTOMATOS_LLM__PRICES__GPT-4O__INPUT_PER_MTOK", "2")
    prices = Settings().llm.prices
    assert prices["my-model"] == ModelPrice(input_per_mtok=1, output_per_mtok=2)
    assert prices["gpt-4o"] == ModelPrice(
        input_per_mtok=2, output_per_mtok=defaults["gpt-4o"].output_per_mtok
    )
    assert prices["gpt-4o-mini"] == defaults["gpt-4o-mini"]


def test_the_debug_variable_is_not_a_misspelt_setting() -> None:
    assert env_warnings({"AUTOMATOS_DEBUG": "1", "AUTOMATOS_DEBUGG": "1"}) == [
        "AUTOMATOS_DEBUGG is not a setting and is ignored"
    ]


def test_the_tool_settings_default_to_a_bounded_loop_and_no_file_reading() -> None:
    tools = Settings().tools
    assert (tools.max_calls, tools.call_timeout_s) == (8, 30.0)
    assert tools.read_root is None and tools.secret_names == ()


def test_the_tool_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AUTOMATOS_TOOLS__MAX_CALLS", "0")
    monkeypatch.setenv("AUTOMATOS_TOOLS__CALL_TIMEOUT_S", "2.5")
    monkeypatch.setenv("AUTOMATOS_TOOLS__READ_ROOT", str(tmp_path))
    monkeypatch.setenv("AUTOMATOS_TOOLS__SECRET_NAMES", '["customer_ssn", " pin ", "pin"]')
    tools = Settings().tools
    assert (tools.max_calls, tools.call_timeout_s) == (0, 2.5)
    assert tools.read_root == tmp_path
    assert tools.secret_names == ("customer_ssn", "pin")
    assert env_warnings() == []
    monkeypatch.setenv("AUTOMATOS_TOOLS__READ_ROOT", "none")
    assert Settings().tools.read_root is None


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("MAX_CALLS", "-1", "AUTOMATOS_TOOLS__MAX_CALLS: Input should be greater than or equal"),
        ("CALL_TIMEOUT_S", "0", "AUTOMATOS_TOOLS__CALL_TIMEOUT_S: Input should be greater than 0"),
        ("SECRET_NAMES", '["pin", " "]', "AUTOMATOS_TOOLS__SECRET_NAMES: a secret name is empty"),
        ("SECRET_NAMES", "[1]", "AUTOMATOS_TOOLS__SECRET_NAMES (0): Input should be a valid str"),
    ],
)
def test_a_wrong_tool_setting_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(f"AUTOMATOS_TOOLS__{variable}", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(problem)


def test_secret_names_that_are_not_json_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOMATOS_TOOLS__SECRET_NAMES", "customer_ssn,pin")
    with pytest.raises(SettingsError) as caught:
        Settings()
    assert describe_settings_error(caught.value).startswith(
        "AUTOMATOS_TOOLS__SECRET_NAMES: not valid JSON"
    )


@pytest.mark.parametrize("module", ["automatos.settings", "automatos.domain", "automatos.tools"])
def test_the_settings_import_first_or_after_the_domain_and_tools(module: str) -> None:
    """The domain imports the tools, which import the LLM layer, which imports the settings:
    whichever a program imports first, they all load."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}; import automatos.settings as s; s.Settings()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
