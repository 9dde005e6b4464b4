"""The direct call fails as ``ainvoke`` fails: the same typed errors, retries only when the
error can pass (connection, time-out, 429, 5xx), a malformed 200 asked again by the tagger.

Each case sends the same messages both ways to an emulated server with a fault, and compares
the exception's type and the requests the server saw.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from vibe_jet_tagging import JetTagger, load_sample
from vibe_jet_tagging.tagging.model import ChatVLLM

JET = load_sample()[5]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def both_ways(tagger: JetTagger, server: Any = None) -> list[tuple[Any, int]]:
    """(outcome, requests the server saw) for ``ainvoke`` and for ``adirect``."""
    messages = tagger.prompt.messages(JET)
    options = tagger.client.options()
    out = []
    for call in (tagger.model.ainvoke, tagger.model.adirect):  # type: ignore[attr-defined]
        if server is not None:
            server.reset_stats()
        try:
            outcome: Any = await call(messages, **options)
        except Exception as exc:
            outcome = exc
        out.append((outcome, server.stats()["requests_total"] if server is not None else 0))
    return out


def tagger_on(server: Any, retries: int, **model: Any) -> JetTagger:
    chat = ChatVLLM(base_url=server.base_url, max_retries=retries, **model)
    return JetTagger(chat, template="zero_shot", cache=None)


@pytest.mark.parametrize(("fault", "retried"), [("server_error", True), ("rate_limit", True)])
async def test_transient_errors_are_retried_and_typed_the_same(fresh_emulator, fault, retried):
    server = fresh_emulator(faults={fault: 1.0}, retry_after=0.0)
    tagger = tagger_on(server, retries=2)
    tagger.client.options()  # the server read first, outside the counts
    [(invoked, sent_invoked), (direct, sent_direct)] = await both_ways(tagger, server)
    assert isinstance(invoked, Exception) and type(direct) is type(invoked), (invoked, direct)
    assert str(direct) == str(invoked)
    assert sent_direct == sent_invoked == (3 if retried else 1)


@pytest.mark.parametrize(
    ("model", "status"), [({"model": "no-such-model"}, 404), ({"max_tokens": 10**7}, 400)]
)
async def test_permanent_errors_are_not_retried_and_typed_the_same(emulator, model, status):
    chat = ChatVLLM(base_url=emulator.base_url, max_retries=3, **model)
    tagger = JetTagger(chat, template="zero_shot", cache=None, structured_output=False)
    [(invoked, sent_invoked), (direct, sent_direct)] = await both_ways(tagger, emulator)
    assert isinstance(invoked, Exception) and type(direct) is type(invoked), (invoked, direct)
    assert getattr(direct, "status_code", None) == getattr(invoked, "status_code", None) == status
    assert sent_direct == sent_invoked == 1


async def test_a_server_that_is_gone_is_the_same_connection_error(emulator):
    chat = ChatVLLM(base_url=emulator.base_url, max_retries=1)
    tagger = JetTagger(chat, template="zero_shot", cache=None)
    options = tagger.client.options()
    down = ChatVLLM(base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    messages = tagger.prompt.messages(JET)
    errors = []
    for call in (down.ainvoke, down.adirect):
        with pytest.raises(Exception, match="Connection error") as caught:
            await call(messages, **options)
        errors.append(caught.value)
    assert type(errors[0]) is type(errors[1]), errors


async def test_a_stalled_server_is_the_same_timeout(fresh_emulator):
    server = fresh_emulator(faults={"stall": 1.0}, stall_seconds=5.0)
    tagger = tagger_on(server, retries=0, timeout=0.3)
    tagger.client.options()
    [(invoked, _), (direct, _)] = await both_ways(tagger)
    assert isinstance(invoked, Exception) and type(direct) is type(invoked), (invoked, direct)


async def test_a_malformed_200_is_asked_again_by_the_tagger(fresh_emulator):
    server = fresh_emulator(faults={"malformed_body": 1.0})
    tagger = tagger_on(server, retries=1)
    results = await tagger.abatch([JET], return_exceptions=True)
    [failed] = results
    error = failed.result.error
    assert error.kind == "server" and "not a chat completion" in error.message
    assert server.stats()["requests_total"] == 2  # asked once more, as through ainvoke
