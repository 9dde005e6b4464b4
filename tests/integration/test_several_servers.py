"""One tagger over several servers (EndpointPool under ChatVLLM), against emulated servers."""

from __future__ import annotations

import pytest

from vibe_jet_tagging import ChatVLLM, JetTagger, load_sample
from vibe_jet_tagging.errors import ServerError

SAMPLE = load_sample()
JETS = list(SAMPLE.head(40))


def tagger_over(*servers, **options) -> JetTagger:
    options.setdefault("template", "zero_shot")
    options.setdefault("cache", None)
    return JetTagger(base_url=[s.base_url for s in servers], effort="low", **options)


async def test_each_server_gets_a_fair_share(fresh_emulator) -> None:
    a, b = fresh_emulator(ttft=0.02), fresh_emulator(ttft=0.02)
    tagger = tagger_over(a, b)
    results = await tagger.abatch(JETS, {"max_concurrency": 8})
    assert all(r.ok for r in results)
    served = [a.stats()["requests_total"], b.stats()["requests_total"]]
    assert sum(served) == len(JETS)
    assert min(served) >= 0.4 * len(JETS), served
    stats = tagger.endpoint_stats()
    assert [s["ok"] for s in stats] == served
    # Each result says which server answered it.
    assert [sum(r.server == s.base_url for r in results) for s in (a, b)] == served
    assert [s["base_url"] for s in stats] == [a.base_url, b.base_url]


async def test_a_server_killed_mid_run_the_others_finish(fresh_emulator) -> None:
    a, b = fresh_emulator(ttft=0.02), fresh_emulator(ttft=0.02)
    tagger = tagger_over(a, b, max_retries=4)
    outcomes = {}
    async for i, result in tagger.abatch_as_completed(
        JETS, {"max_concurrency": 6}, return_exceptions=True
    ):
        outcomes[i] = result
        if len(outcomes) == 10:
            b.stop()
    assert sorted(outcomes) == list(range(len(JETS)))  # every jet labelled or counted
    assert all(r.ok for r in outcomes.values()), [r for r in outcomes.values() if not r.ok]
    by_url = {s["base_url"]: s for s in tagger.endpoint_stats()}
    assert by_url[b.base_url]["failed"] >= 1  # b was tried after the kill and set aside
    assert by_url[a.base_url]["ok"] > by_url[b.base_url]["ok"]


def test_each_servers_models_are_checked_once_and_must_match(fresh_emulator) -> None:
    a = fresh_emulator()
    other = fresh_emulator(models=["another-model"])
    with pytest.raises(ServerError, match="does not serve 'openai/gpt-oss-120b'"):
        tagger_over(a, other).server_info()
    tagger = tagger_over(a, fresh_emulator())
    assert tagger.server_info().emulated
    assert len(tagger.base_urls) == 2


def test_one_server_down_at_the_start_is_set_aside(fresh_emulator, caplog) -> None:
    a, b = fresh_emulator(), fresh_emulator()
    b.stop()
    tagger = tagger_over(a, b, max_retries=2)
    results = tagger.batch(JETS[:6])
    assert all(r.ok for r in results)
    assert "set aside" in caplog.text


def test_chatvllm_with_one_url_in_a_list_is_the_url_alone() -> None:
    model = ChatVLLM(base_url=["http://127.0.0.1:9/v1"])
    assert model.endpoint_pool is not None
    assert model.endpoint_pool.base_urls == ["http://127.0.0.1:9/v1"]
    assert model.openai_api_base == "http://127.0.0.1:9/v1"
    assert not model.include_response_headers  # one server: no need to say which answered


def test_vjt_tag_over_two_servers(fresh_emulator, tmp_path, capsys) -> None:
    from vibe_jet_tagging.cli import main

    a, b = fresh_emulator(ttft=0.01), fresh_emulator(ttft=0.01)
    out = tmp_path / "r.jsonl"
    code = main(
        ["tag", "sample", "-o", str(out), "--base-url", a.base_url, "--base-url", b.base_url,
         "--limit", "30", "--template", "zero_shot", "--no-cache"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    served = [a.stats()["requests_total"], b.stats()["requests_total"]]
    assert sum(served) == 30 and min(served) >= 10, served
    assert f"{a.base_url} {served[0]} answered, 0 failed" in err
    assert f"{b.base_url} {served[1]} answered, 0 failed" in err


def test_vjt_base_url_from_the_environment_is_a_list(fresh_emulator, tmp_path, monkeypatch):
    from vibe_jet_tagging.cli import main

    a, b = fresh_emulator(), fresh_emulator()
    monkeypatch.setenv("VJT_BASE_URL", f"{a.base_url},{b.base_url}")
    out = tmp_path / "r.jsonl"
    args = ["tag", "sample", "-o", str(out), "--limit", "8", "--template", "zero_shot"]
    assert main([*args, "--no-cache"]) == 0
    assert a.stats()["requests_total"] > 0 and b.stats()["requests_total"] > 0
