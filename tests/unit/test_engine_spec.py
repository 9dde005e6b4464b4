"""TaggerSpec fixes the driver's configuration, so workers with another environment agree."""

from __future__ import annotations

from vibe_jet_tagging.scale.engines.spec import TaggerSpec


def test_the_drivers_environment_travels_in_the_spec(monkeypatch) -> None:
    monkeypatch.setenv("VJT_MODEL", "my-model")
    monkeypatch.setenv("VJT_BASE_URL", "http://a:8000/v1,http://b:8000/v1")
    monkeypatch.setenv("VJT_EFFORT", "high")
    spec = TaggerSpec()
    for name in ("VJT_MODEL", "VJT_BASE_URL", "VJT_EFFORT"):
        monkeypatch.delenv(name)  # a worker's environment
    tagger = spec.build()
    assert tagger.model_name == "my-model"
    assert tagger.base_urls == ["http://a:8000/v1", "http://b:8000/v1"]
    assert tagger.effort == "high"


def test_arguments_win_over_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("VJT_MODEL", "my-model")
    monkeypatch.setenv("VJT_EFFORT", "high")
    spec = TaggerSpec("other", base_url="http://c:8000/v1", reasoning_effort="low")
    assert spec.model == "other"
    assert spec.options["base_url"] == "http://c:8000/v1"
    assert spec.options["reasoning_effort"] == "low"
