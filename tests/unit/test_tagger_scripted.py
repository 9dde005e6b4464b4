"""JetTagger's parsing and caching logic with a scripted chat model swapped in (no network)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from pydantic import Field

from vibe_jet_tagging import JetTagger, TaggingError
from vibe_jet_tagging.jets import Jet
from vibe_jet_tagging.store.cache import ResultCache


class ScriptedModel(GenericFakeChatModel):
    """Answers from a script, and remembers what it was asked."""

    asked: list = Field(default_factory=list)

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.asked.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*answers: str | AIMessage) -> ScriptedModel:
    def messages() -> Iterator[AIMessage]:
        for a in answers:
            yield (
                a
                if isinstance(a, AIMessage)
                else AIMessage(
                    a,
                    usage_metadata={"input_tokens": 100, "output_tokens": 10, "total_tokens": 110},
                )
            )

    return ScriptedModel(messages=messages())


def tagger(model, **options) -> JetTagger:
    options.setdefault("template", "zero_shot")
    options.setdefault("cache", None)
    return JetTagger(model, **options)


def test_valid_json_is_read_by_the_schema_step(jet):
    model = scripted('{"label": "gluon", "quark_probability": 0.2}')
    result = tagger(model).invoke(jet)
    assert (result.label, result.quark_probability, result.parsed_by) == ("gluon", 0.2, "schema")
    assert result.usage.requests == 1
    assert result.usage.input_tokens == 100


def test_broken_json_is_reasked_once_and_the_fix_is_marked(jet):
    model = scripted(
        '{"label": "quark", "quark_probability": 7}', '{"label": "quark", "quark_probability": 0.7}'
    )
    result = tagger(model).invoke(jet)
    assert (result.label, result.parsed_by) == ("quark", "reask")
    assert result.usage.requests == 2
    assert result.usage.input_tokens == 200
    first, second = model.asked
    assert second[: len(first)] == first
    assert second[-2].content == '{"label": "quark", "quark_probability": 7}'
    assert "less than or equal to 1" in second[-1].content


def test_prose_is_read_by_the_regex_without_a_reask(jet):
    model = scripted("Many soft particles and a wide core... so the answer is 0.")
    result = tagger(model).invoke(jet)
    assert (result.label, result.parsed_by, result.quark_probability) == ("gluon", "regex", None)
    assert len(model.asked) == 1
    assert result.score == 0.0


def test_prose_without_label_is_reasked(jet):
    model = scripted("Hard to say.", '{"label": "quark", "quark_probability": 0.6}')
    result = tagger(model).invoke(jet)
    assert result.parsed_by == "reask"
    assert len(model.asked) == 2


def test_a_failed_reask_never_falls_back_to_the_first_answer(jet):
    # Today's main read the 1 of "confidence" in the first answer once the re-ask failed.
    first = '{"label": "gluon", "quark_probability": 0.2, "confidence": 1}'
    model = scripted(first, "I stand by it.")
    with pytest.raises(TaggingError) as info:
        tagger(model).invoke(jet)
    result = info.value.result
    assert (result.label, result.error.kind) == (None, "parse")
    assert result.error.raw_answer == "I stand by it."
    assert "Extra inputs are not permitted" in model.asked[1][-1].content


def test_a_truncated_reask_after_json_is_a_truncation_not_a_regex_guess(jet):
    first = '{"label": "gluon", "quark_probability": 0.2, "confidence": 1}'
    cut = AIMessage('{"label": "qu', response_metadata={"finish_reason": "length"})
    with pytest.raises(TaggingError) as info:
        tagger(scripted(first, cut)).invoke(jet)
    assert info.value.result.label is None
    assert info.value.result.error.kind == "truncated"


@pytest.mark.parametrize(
    "unknown",
    [
        '{"label": "unknown", "quark_probability": 0}',  # today's main: gluon (the bare 0)
        '{"label": "unknown", "quark_probability": 0.5}',
    ],
)
def test_json_with_an_unknown_label_reasked_twice_is_an_error(jet, unknown):
    model = scripted(unknown, unknown)
    with pytest.raises(TaggingError) as info:
        tagger(model).invoke(jet)
    assert info.value.result.error.kind == "parse"
    assert info.value.result.label is None
    assert len(model.asked) == 2


def test_a_contradiction_is_reasked_and_the_fix_is_taken(jet):
    model = scripted(
        '{"label": "gluon", "quark_probability": 1.0}',
        '{"label": "quark", "quark_probability": 1.0}',
    )
    result = tagger(model).invoke(jet)
    assert (result.label, result.quark_probability, result.parsed_by) == ("quark", 1.0, "reask")
    assert "contradicts quark_probability 1.0" in model.asked[1][-1].content


def test_a_contradiction_that_stays_is_an_error_of_its_own_kind(jet):
    answer = '{"label": "gluon", "quark_probability": 0.9}'
    with pytest.raises(TaggingError) as info:
        tagger(scripted(answer, answer)).invoke(jet)
    error = info.value.result.error
    assert (error.kind, error.raw_answer) == ("contradiction", answer)
    assert "contradict" in str(info.value)
    with pytest.raises(TaggingError) as info:  # without a re-ask: at once
        tagger(scripted(answer), reask=False).invoke(jet)
    assert info.value.result.error.kind == "contradiction"


@pytest.mark.parametrize(
    "answer",
    [
        "I am not sure whether this is a quark or a gluon jet.",
        "Neither quark nor gluon; could be 1 of many.",
        "I cannot decide between 0 and 1.",
        "Step 1",
        "#1",
        "Feature: SkipQA #1",
    ],
)
def test_non_answers_are_reasked_and_never_become_labels(jet, answer):
    model = scripted(answer, answer)
    with pytest.raises(TaggingError) as info:
        tagger(model).invoke(jet)
    assert info.value.result.error.kind == "parse"
    assert len(model.asked) == 2
    assert "Reply with only a JSON object" in model.asked[1][-1].content


def test_the_tagger_reads_answers_with_its_parser_object(jet):
    from vibe_jet_tagging import JetLabelParser

    class CountingParser(JetLabelParser):
        calls: int = 0

        def read_message(self, message):
            self.calls += 1
            return super().read_message(message)

    t = tagger(scripted('{"label": "gluon", "quark_probability": 0.2}'))
    assert isinstance(t.parser, JetLabelParser)
    t.parser = CountingParser(name="parse_label")
    assert t.invoke(jet).label == "gluon"
    assert t.parser.calls == 1


def test_no_label_anywhere_is_an_error_never_a_guess(jet):
    model = scripted("I cannot classify this.", "Still cannot.")
    with pytest.raises(TaggingError) as info:
        tagger(model).invoke(jet)
    result = info.value.result
    assert result.label is None
    assert result.value is None
    assert result.score is None
    assert result.error.kind == "parse"
    assert result.error.raw_answer == "Still cannot."
    assert result.usage.requests == 2  # what the failure cost is still reported


def test_without_reask_a_bad_answer_fails_at_once(jet):
    model = scripted("No idea.")
    with pytest.raises(TaggingError, match="parse"):
        tagger(model, reask=False).invoke(jet)
    assert len(model.asked) == 1


def test_a_truncated_answer_is_reported_as_truncated(jet):
    cut = AIMessage('{"label": "quark"', response_metadata={"finish_reason": "length"})
    with pytest.raises(TaggingError) as info:
        tagger(scripted(cut)).invoke(jet)
    assert info.value.result.error.kind == "truncated"


def test_cache_hit_skips_the_model_and_costs_nothing(jet, tmp_path):
    model = scripted('{"label": "quark", "quark_probability": 0.9}')
    first = tagger(model, cache=ResultCache(tmp_path)).invoke(jet)
    again = tagger(model, cache=ResultCache(tmp_path)).invoke(jet)  # the script is used up
    assert not first.cached
    assert again.cached
    assert again.label == first.label
    assert again.usage == first.usage  # the saved usage stays on the result
    assert len(model.asked) == 1


def test_failures_are_not_cached(jet, tmp_path):
    model = scripted("?", "?", '{"label": "gluon", "quark_probability": 0.1}')
    cache = ResultCache(tmp_path)
    with pytest.raises(TaggingError):
        tagger(model, cache=cache).invoke(jet)
    assert len(cache) == 0
    assert tagger(model, cache=cache).invoke(jet).label == "gluon"  # asked again


def test_key_ignores_padding_and_row_order_but_not_values(jet):
    t = tagger(scripted())
    x = jet.constituents
    padded = np.vstack([x[::-1], np.zeros((7, 4))])
    assert t.key_for(Jet.from_array(padded)) == t.key_for(jet)
    changed = x.copy()
    changed[3, 0] += 1e-9
    assert t.key_for(Jet.from_array(changed)) != t.key_for(jet)


def test_request_settings_beside_a_model_object_are_refused_not_ignored():
    with pytest.raises(ValueError, match="base_url, timeout: set these on the chat model"):
        JetTagger(scripted(), base_url="http://x/v1", timeout=3, template="zero_shot")


def test_a_failed_jet_repeated_in_a_batch_is_paid_once(jet):
    model = scripted("no idea", "still none")
    outcomes = tagger(model).batch([jet, jet.constituents], return_exceptions=True)
    assert all(isinstance(o, TaggingError) for o in outcomes)
    assert sorted(o.result.usage.requests for o in outcomes) == [0, 2]
    assert len(model.asked) == 2  # one jet, asked and re-asked once


async def test_a_data_set_or_padded_array_is_tagged_as_its_jets_one_by_one(labelled_pool):
    """abatch reads a data set or an (N, M, 4) array a block at a time: the same jets (keys),
    the same error for a bad jet at its position, and the index ds[i] gives."""
    from itertools import repeat

    from vibe_jet_tagging.jets.dataset import dataset_from_arrays

    block = np.zeros((5, 80, 4))
    for j in range(5):
        c = labelled_pool[j][0].constituents
        block[j, : len(c)] = c[::-1]  # reversed: the block's jets must be sorted
    block[2, 3, 1] = np.nan
    block[4] = block[1]  # a twin
    ds = dataset_from_arrays(block)[[4, 3, 2, 1, 0]]

    async def tagged(inputs):
        answer = AIMessage('{"label": "quark", "quark_probability": 0.7}')
        model = ScriptedModel(messages=iter(repeat(answer)))
        results = await tagger(model).abatch(inputs, return_exceptions=True)
        return [str(r) if isinstance(r, Exception) else (r.key, r.index) for r in results]

    async def one_by_one(get):
        """The jets got one at a time tagged, each bad one's error in its place."""
        got = []
        for i in range(5):
            try:
                got.append(get(i))
            except ValueError as exc:
                got.append(str(exc))
        tagged_jets = iter(await tagged([g for g in got if isinstance(g, Jet)]))
        return [g if isinstance(g, str) else next(tagged_jets) for g in got]

    from_ds = await tagged(ds)
    assert from_ds == await one_by_one(lambda i: ds[i])
    assert [r[1] for r in from_ds if isinstance(r, tuple)] == [4, 3, 1, 0]
    assert from_ds[2] == "jet 2: non-finite value (nan or inf) in constituent row 3"
    assert from_ds[0][0] == from_ds[3][0]  # the twins
    from_array = await tagged(block)
    assert from_array == await one_by_one(lambda i: Jet.from_array(block[i]))
    assert from_array[2].startswith("non-finite value")
    assert [r[0] for r in from_array if isinstance(r, tuple)] == [
        r[0] for r in from_ds[::-1] if isinstance(r, tuple)
    ]


def test_a_template_that_asks_for_digits_gets_its_json_digits_read(jet):
    from vibe_jet_tagging.tagging.templates import PromptTemplateSpec, load_template

    zero = load_template("zero_shot")
    digits = PromptTemplateSpec(**{**zero.model_dump(), "labels": "digits", "name": "digits"})
    answer = '{"label": 1, "quark_probability": 0.8}'
    result = tagger(scripted(answer), template=digits).invoke(jet)
    assert (result.label, result.quark_probability) == ("quark", 0.8)
    with pytest.raises(TaggingError) as words:  # a words template: 1 is no label
        tagger(scripted(answer, answer)).invoke(jet)
    assert words.value.result.error.kind == "parse"
