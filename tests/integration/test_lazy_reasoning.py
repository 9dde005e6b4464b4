"""Cached results read in bulk hold their reasoning text only once asked for, and give it.

``abatch`` over cached jets reads the entries without keeping each reasoning text (most runs
never read it: ~2 KB of a ~3 KB result); ``result.reasoning``, a dump, a copy, a pickle and a
results row with the reasoning all still have it, read back from the cache.
"""

from __future__ import annotations

import pickle

from vibe_jet_tagging import JetTagger, load_sample
from vibe_jet_tagging.store.cache import ResultCache
from vibe_jet_tagging.store.rows import result_row

JETS = [load_sample()[i] for i in (1, 2, 3)]


async def test_cached_results_give_their_reasoning_when_asked(emulator, tmp_path):
    tagger = JetTagger(
        emulator.model, base_url=emulator.base_url, template="zero_shot",
        cache=ResultCache(tmp_path / "cache"),
    )  # fmt: skip
    first = await tagger.abatch(JETS)
    texts = [r.reasoning for r in first]
    assert all(texts) and not any(r.cached for r in first)
    again = await tagger.abatch(JETS)
    assert all(r.cached for r in again)
    assert all("reasoning" not in r.__dict__ for r in again)  # not held yet
    assert [r.reasoning for r in again] == texts
    hit = (await tagger.abatch(JETS[:1]))[0]
    assert hit.model_dump()["reasoning"] == texts[0]
    assert f'"reasoning":{texts[0]!r}'.replace("'", '"')[:40] in hit.model_dump_json()
    assert pickle.loads(pickle.dumps((await tagger.abatch(JETS[:1]))[0])).reasoning == texts[0]
    assert (await tagger.abatch(JETS[:1]))[0].model_copy().reasoning == texts[0]
    [hit] = await tagger.abatch(JETS[:1])
    row = result_row(hit, index=0, truth=None, source="sample", reasoning=True)
    assert row["reasoning"] == texts[0]
    assert (await tagger.abatch(JETS[:1]))[0] == first[0].model_copy(
        update={"cached": True, "index": first[0].index}
    )


async def test_a_reasoning_text_from_another_entry_is_not_given(emulator, tmp_path):
    cache = ResultCache(tmp_path / "cache")
    tagger = JetTagger(
        emulator.model, base_url=emulator.base_url, template="zero_shot", cache=cache
    )
    [first] = await tagger.abatch(JETS[:1])
    [hit] = await tagger.abatch(JETS[:1])
    cache.delete(first.key)  # the entry went away (evicted, cleared) before it was asked
    assert hit.reasoning is None
    assert hit.ok and hit.label == first.label
