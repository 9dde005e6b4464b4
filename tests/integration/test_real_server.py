"""Against a real vLLM server: runs only when one is configured.

Set ``VJT_REAL_BASE_URL`` (e.g. ``http://gpu-node:8000/v1``) and ``VJT_REAL_MODEL`` (e.g.
``openai/gpt-oss-120b``); optionally ``VJT_REAL_API_KEY``. These are the only tests that leave
loopback, and only for that host.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest

from vibe_jet_tagging import ChatVLLM, JetTagger, load_sample
from vibe_jet_tagging.model import REASONING_KEY, check_server

BASE_URL = os.environ.get("VJT_REAL_BASE_URL")
MODEL = os.environ.get("VJT_REAL_MODEL")
API_KEY = os.environ.get("VJT_REAL_API_KEY", "EMPTY")


def _hosts() -> list[str]:
    if not BASE_URL:
        return ["127.0.0.1"]
    host = urlparse(BASE_URL).hostname or "127.0.0.1"
    try:
        return ["127.0.0.1", "::1", host, socket.gethostbyname(host)]
    except OSError:
        return ["127.0.0.1", "::1", host]


pytestmark = [
    pytest.mark.real_server,
    pytest.mark.skipif(
        not (BASE_URL and MODEL),
        reason="no real vLLM server configured (set VJT_REAL_BASE_URL and VJT_REAL_MODEL)",
    ),
    pytest.mark.allow_hosts(_hosts()),
]


def test_server_serves_the_model():
    assert MODEL in check_server(BASE_URL, MODEL, API_KEY)


def test_reasoning_and_usage_come_back():
    model = ChatVLLM(base_url=BASE_URL, model=MODEL, api_key=API_KEY, reasoning_effort="low")
    message = model.invoke("Is a jet with 60 soft constituents more quark- or gluon-like?")
    assert message.additional_kwargs.get(REASONING_KEY), "no reasoning field in the answer"
    assert message.usage_metadata["output_tokens"] > 0


async def test_tags_a_few_real_jets():
    sample = load_sample()
    tagger = JetTagger(
        MODEL,
        base_url=BASE_URL,
        api_key=API_KEY,
        effort="low",
        cache=None,
        examples=sample[2000:2200],
    )
    results = await tagger.abatch(list(sample.balanced(4, seed=3)), return_exceptions=True)
    labelled = [r for r in results if not isinstance(r, Exception)]
    assert labelled, f"no jet got a label: {results}"
    for r in labelled:
        assert r.label in ("quark", "gluon")
        assert r.usage.output_tokens > 0
