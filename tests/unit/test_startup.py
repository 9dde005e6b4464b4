"""A quick start (issue 23): building a ``JetTagger`` imports no stack it does not use yet.

``JetTagger(...)`` builds its ``ChatVLLM`` (a ``ChatOpenAI``: langchain-openai and the openai
SDK, ~1 s of CPU to import) and its answer parser (instructor) on first use, not in the
constructor; what building them could refuse is still refused by the constructor, in the same
one line. These tests check which modules get imported, never how long anything takes (the
CPU time is measured by ``benchmarks/startup.py``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing

import pytest

from vibe_jet_tagging import ConfigError, JetTagger, VJTError
from vibe_jet_tagging.tagging import parsing, results

LATER = (
    "openai",
    "langchain_openai",
    "instructor",
    "aiohttp",
    "vibe_jet_tagging.tagging.model",
    "vibe_jet_tagging.tagging.parser",
    "vibe_jet_tagging.tagging.parsing",
    "vibe_jet_tagging.servers.pool",
)
"""What importing the package and building a tagger leave for first use. LangChain's tracers
and langsmith are imported by any ``Runnable`` (``langchain_core.runnables.base``), so they
are not in this list."""

_PROBE = """
import json, sys
import vibe_jet_tagging
from vibe_jet_tagging import JetTagger
tagger = JetTagger(base_url=sys.argv[1], template="zero_shot", cache=None)
built = sorted(sys.modules)
out = {"built": built, "repr": repr(tagger)}
if sys.argv[1] != "none":
    result = tagger.invoke(vibe_jet_tagging.load_sample()[0])
    out["label"] = result.label
    out["model"] = type(tagger.model).__name__
print("PROBE " + json.dumps(out))
"""


def probe(base_url: str) -> dict[str, typing.Any]:
    """Build a tagger (and tag one jet when a server is given) in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, base_url],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
        check=False,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PROBE ")), None)
    assert line is not None, proc.stdout[-2000:] + proc.stderr[-3000:]
    found: dict[str, typing.Any] = json.loads(line.removeprefix("PROBE "))
    return found


def imported(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return sorted({n for n in names for m in modules if m == n or m.startswith(n + ".")})


def test_building_a_tagger_leaves_the_model_and_parser_stacks_for_first_use(emulator) -> None:
    found = probe(emulator.base_url)
    assert imported(found["built"], LATER) == []
    assert "model='openai/gpt-oss-120b'" in found["repr"]
    # The first request builds them, and the jet is tagged as ever.
    assert found["model"] == "ChatVLLM"
    assert found["label"] in ("quark", "gluon")


def test_what_the_tagger_knows_before_its_model_is_built() -> None:
    tagger = JetTagger(
        base_url="http://user:secret@127.0.0.1:9/v1/", reasoning_effort="low", cache=None
    )
    assert tagger.model_name == "openai/gpt-oss-120b"
    assert tagger.reasoning_effort == "low"
    assert tagger.base_url == "http://user@127.0.0.1:9/v1"
    assert tagger.client.served
    assert not tagger.client._model.built  # none of these built it
    model = tagger.model  # reading it does
    assert type(model).__name__ == "ChatVLLM"
    assert tagger.model is model
    assert model.openai_api_base == "http://user:secret@127.0.0.1:9/v1"
    assert model.reasoning_effort == "low"


def test_a_chat_model_passed_in_is_used_as_given() -> None:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    model = FakeListChatModel(responses=['{"label": "quark", "quark_probability": 0.9}'])
    tagger = JetTagger(model, cache=None)
    assert tagger.model is model
    assert not tagger.client.served


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"base_url": "http://a/v1,http://a/v1"},
            "ChatVLLM: the same base URL is given twice: http://a/v1, http://a/v1",
        ),
        (
            {"base_url": ["http://a/v1", "http://b/v2"]},
            r"ChatVLLM: the base URLs must share one path \(e.g. /v1\), got \['/v1', '/v2'\]",
        ),
        ({"base_url": "http://[::1"}, "ChatVLLM: Invalid IPv6 URL"),
        ({"api_key": ""}, "ChatVLLM: api_key is empty"),
        ({"reasoning_effort": "x"}, r"reasoning_effort 'x' \(from the argument\)"),
        ({"temperature": 5}, "temperature 5 .from the argument.: Input should be less than"),
        ({"template": "no_such_template"}, "unknown template 'no_such_template'"),
    ],
)
def test_configuration_errors_still_stop_the_constructor(options, message) -> None:
    with pytest.raises(VJTError, match=message) as raised:  # ConfigError, or the template's
        JetTagger(cache=None, **options)
    assert "\n" not in str(raised.value)


def test_what_a_model_refuses_is_what_the_constructor_refuses() -> None:
    """The URL check the constructor runs is the one the model's pool of servers runs."""
    from vibe_jet_tagging import ChatVLLM

    for url in ("http://a/v1,http://a/v1", "http://[::1"):
        with pytest.raises(ConfigError) as by_model:
            ChatVLLM(base_url=url.split(",") if "," in url else url)
        with pytest.raises(ConfigError) as by_tagger:
            JetTagger(base_url=url, cache=None)
        assert str(by_tagger.value) == str(by_model.value)


def test_results_spell_the_parsers_labels_and_steps() -> None:
    assert typing.get_args(results.Label) == typing.get_args(parsing.Label)
    assert typing.get_args(results.ParseStep) == typing.get_args(parsing.ParseStep)
