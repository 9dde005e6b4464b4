"""The Python API reads the configuration the CLI reads: given, then environment, then file.

The autouse ``isolated_settings`` fixture (tests/conftest.py) clears every ``VJT_*`` and
``OPENAI_*`` variable and points ``VJT_CONFIG`` at a file that does not exist, so each test
sets exactly what it reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vibe_jet_tagging import ChatVLLM, JetTagger
from vibe_jet_tagging.config import api_settings, load_settings
from vibe_jet_tagging.errors import ConfigError, VJTError
from vibe_jet_tagging.tagging.prompt import JetPromptTemplate
from vibe_jet_tagging.tagging.results import (
    TagError,
    TaggingError,
    TagResult,
    TransientTaggingError,
)

ENVIRONMENT = {
    "VJT_BASE_URL": "http://gpu-node:8000/v1",
    "VJT_MODEL": "openai/gpt-oss-20b",
    "VJT_EFFORT": "high",
    "VJT_MAX_TOKENS": "4096",
    "VJT_TIMEOUT": "120",
    "VJT_MAX_RETRIES": "7",
    "VJT_TEMPERATURE": "0.3",
    "VJT_SEED": "11",
    "OPENAI_API_KEY": "sk-from-env",
}


def write_config(path: Path, **values: object) -> Path:
    lines = [
        f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"' for k, v in values.items()
    ]
    path.write_text("\n".join(lines).replace("True", "true").replace("False", "false") + "\n")
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def check_model(model: ChatVLLM) -> None:
    assert model.openai_api_base == "http://gpu-node:8000/v1"
    assert model.model_name == "openai/gpt-oss-20b"
    assert model.reasoning_effort == "high"
    assert model.max_tokens == 4096
    assert model.request_timeout == 120.0
    assert model.max_retries == 7
    assert model.temperature == 0.3
    assert model.seed == 11
    assert model.openai_api_key is not None
    assert model.openai_api_key.get_secret_value() == "sk-from-env"


def test_environment_reaches_chat_vllm(env) -> None:
    check_model(ChatVLLM())


def test_environment_reaches_jet_tagger(env, tmp_path) -> None:
    env.setenv("VJT_TEMPLATE", "zero_shot")
    env.setenv("VJT_CONCURRENCY", "9")
    env.setenv("VJT_STRUCTURED_OUTPUT", "false")
    env.setenv("VJT_CACHE_DIR", str(tmp_path / "cache"))
    tagger = JetTagger()
    assert isinstance(tagger.model, ChatVLLM)
    check_model(tagger.model)
    assert tagger.reasoning_effort == "high"
    assert tagger.prompt_template.spec.name == "zero_shot"
    assert tagger.max_concurrency == 9
    assert tagger.structured_output is False
    assert tagger.cache is not None
    assert tagger.cache.directory == tmp_path / "cache" / "results"
    assert tagger.cache.shared is False
    env.setenv("VJT_SHARED_CACHE", "1")
    assert JetTagger().cache.shared is True


def test_shots_and_selector_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("VJT_SHOTS", "2")
    monkeypatch.setenv("VJT_SELECTOR", "nearest")
    tagger = JetTagger(cache=False)
    assert tagger.prompt.shots == 2
    assert type(tagger.prompt.selector).__name__ == "NearestExampleSelector"


def test_openai_base_url_is_read_after_vjt_base_url(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-style:9000/v1")
    assert ChatVLLM().openai_api_base == "http://openai-style:9000/v1"
    assert JetTagger(cache=False).base_url == "http://openai-style:9000/v1"
    monkeypatch.setenv("VJT_BASE_URL", "http://vjt-style:8000/v1")
    assert ChatVLLM().openai_api_base == "http://vjt-style:8000/v1"
    monkeypatch.setenv("VJT_BASE_URL", "")  # empty is unset
    assert ChatVLLM().openai_api_base == "http://openai-style:9000/v1"


def test_precedence_argument_environment_file_default(monkeypatch, tmp_path) -> None:
    assert JetTagger(cache=False).reasoning_effort == "medium"  # default
    config = write_config(tmp_path / "c.toml", effort="low", model="m/file", max_retries=1)
    monkeypatch.setenv("VJT_CONFIG", str(config))
    tagger = JetTagger(cache=False)
    assert (tagger.reasoning_effort, tagger.model_name) == ("low", "m/file")  # file
    assert tagger.model.max_retries == 1
    assert ChatVLLM().model_name == "m/file"
    monkeypatch.setenv("VJT_EFFORT", "high")
    assert JetTagger(cache=False).reasoning_effort == "high"  # environment beats file
    assert ChatVLLM().reasoning_effort == "high"
    assert JetTagger(reasoning_effort="medium", cache=False).reasoning_effort == "medium"
    assert ChatVLLM(reasoning_effort="medium").reasoning_effort == "medium"  # argument wins


def test_reasoning_effort_is_the_name_and_effort_an_alias() -> None:
    assert JetTagger(reasoning_effort="low", cache=False).reasoning_effort == "low"
    tagger = JetTagger(effort="high", cache=False)
    assert tagger.reasoning_effort == tagger.effort == "high"
    assert tagger.model.reasoning_effort == "high"
    assert JetTagger(effort="low", reasoning_effort="low", cache=False).effort == "low"
    with pytest.raises(ConfigError, match="effort is an alias of reasoning_effort"):
        JetTagger(effort="low", reasoning_effort="high", cache=False)


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: JetTagger(reasoning_effort="extreme"), ["reasoning_effort", "'low', 'medium'"]),
        (lambda: JetTagger(effort="extreme"), ["reasoning_effort", "'high'"]),
        (lambda: JetTagger(shots=-1), ["shots", "greater than or equal to 0"]),
        (lambda: JetTagger(selector="x"), ["selector", "'balanced' or 'nearest'"]),
        (lambda: JetTagger(max_concurrency=0), ["max_concurrency", "greater than or equal to 1"]),
        (lambda: JetTagger(temperature=9), ["temperature", "less than or equal to 2"]),
        (lambda: ChatVLLM(temperature=9), ["temperature=9", "between 0 and 2"]),
        (lambda: ChatVLLM(reasoning_effort="extreme"), ["reasoning_effort", "'medium'"]),
        (lambda: JetPromptTemplate(shots=-1), ["shots=-1", ">= 0"]),
        (lambda: JetPromptTemplate(selector="x"), ["selector='x'", "balanced, nearest"]),
    ],
)
def test_invalid_arguments_are_one_line(make, names) -> None:
    with pytest.raises(ConfigError) as raised:
        make()
    message = str(raised.value)
    assert isinstance(raised.value, ValueError | VJTError)
    assert "\n" not in message
    assert "validation error" not in message  # no pydantic dump
    for name in names:
        assert name in message


def test_an_invalid_environment_variable_is_named(monkeypatch) -> None:
    monkeypatch.setenv("VJT_EFFORT", "extreme")
    for make in (JetTagger, ChatVLLM):
        with pytest.raises(ConfigError, match=r"effort 'extreme' \(from VJT_EFFORT\)"):
            make()


def test_request_settings_beside_a_model_object_are_refused() -> None:
    with pytest.raises(ConfigError, match="base_url, timeout: set these on the chat model"):
        JetTagger(ChatVLLM(), base_url="http://x/v1", timeout=3)
    with pytest.raises(ConfigError, match="reasoning_effort: set these on the chat model"):
        JetTagger(ChatVLLM(), effort="low")


def test_a_prompt_template_can_be_given_whole() -> None:
    template = JetPromptTemplate("zero_shot")
    tagger = JetTagger(template=template, cache=False)
    assert tagger.prompt_template is template
    assert tagger.prompt is template.jet_prompt
    with pytest.raises(ConfigError, match="shots: set these on the JetPromptTemplate"):
        JetTagger(template=template, shots=2, cache=False)


def test_repr_shows_model_server_effort_template_and_cache(tmp_path) -> None:
    tagger = JetTagger(
        "m/x", base_url="http://h:1/v1", reasoning_effort="low", template="zero_shot",
        cache=tmp_path / "c",
    )  # fmt: skip
    text = repr(tagger)
    for part in ("'m/x'", "'http://h:1/v1'", "reasoning_effort='low'", "'zero_shot'", "/c'"):
        assert part in text
    assert "cache=None" in repr(JetTagger(cache=False))


def test_cli_and_api_name_a_bad_value_alike_and_its_origin_each_its_way(monkeypatch) -> None:
    # One name for the value (Python's), and where it came from as the user wrote it.
    with pytest.raises(
        ConfigError, match=r"invalid setting: reasoning_effort 'x' \(from --effort\)"
    ):
        load_settings(effort="x")
    with pytest.raises(ConfigError, match=r"reasoning_effort 'x' \(from the argument\)"):
        api_settings({"effort": "reasoning_effort"}, effort="x")
    monkeypatch.setenv("VJT_EFFORT", "hgh")
    with pytest.raises(ConfigError, match=r"reasoning_effort 'hgh' \(from VJT_EFFORT\)"):
        load_settings()


@pytest.mark.parametrize(
    ("kind", "status", "transient"),
    [
        ("connection", None, True),
        ("timeout", None, True),
        ("rate_limit", 429, True),
        ("server", 500, True),
        ("server", 503, True),
        ("server", 404, False),  # the model does not exist
        ("bad_request", 400, False),
        ("parse", None, False),
        ("truncated", None, False),
        ("input", None, False),
    ],
)
def test_which_errors_can_pass(kind, status, transient) -> None:
    result = TagResult(jet_key="j", key="k", error=TagError(kind=kind, message="m", status=status))
    error = TaggingError(result)
    assert error.transient is transient
    assert isinstance(error, TransientTaggingError) is transient
    assert isinstance(error, TaggingError)
    assert error.result is result
