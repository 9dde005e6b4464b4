"""vLLM's wire protocol, as the package relies on it, checked on both servers.

The ``server`` fixture (tests/conftest.py) is the emulated server and, under
``pytest -m real_vllm``, a real vLLM: the same test code for both, so the emulator cannot
drift from what vLLM does.

Requests are short (a real CPU server prefills ~100-270 tokens/s) and greedy where the answer's
length matters.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import jsonschema
import pytest

from vibe_jet_tagging.tagging.parsing import COMPACT_LABEL_REGEX, JetLabel, label_response_format

HI = [{"role": "user", "content": "Reply with one word: yes."}]
NO_REASONING = {"reasoning_effort": "none"}
"""For tests about the answer's tokens: a reasoning model would spend them on reasoning."""
LOW = {"reasoning_effort": "low", "max_tokens": 600}
"""Room for a short reasoning and the answer (SmolLM2 ignores the effort)."""
ASK_LABEL = [
    {
        "role": "user",
        "content": "A jet has 60 soft constituents spread wide. Is it a quark or a gluon jet? "
        'Answer as JSON: {"label": "quark" or "gluon", "quark_probability": number}.',
    }
]


def post(server, body: Any, **kwargs: Any) -> httpx.Response:
    body = {"model": server.model, **body} if isinstance(body, dict) else body
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=600, **kwargs)


def expect_error(server, response: httpx.Response, status: int) -> dict[str, Any]:
    """The error object of a vLLM error answer (``{"error": {message, type, param, code}}``)."""
    assert response.status_code == status, response.text
    if status == 400:
        server.expected_400 += 1
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["code"] == status
    assert isinstance(error["message"], str) and error["message"]
    return error


def events(response: httpx.Response) -> list[Any]:
    """The server-sent events of a streamed answer."""
    assert response.headers["content-type"].startswith("text/event-stream")
    out = []
    for block in response.text.split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            payload = block[len("data: ") :]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


# -- discovery ------------------------------------------------------------------------------------


def test_models_card(server) -> None:
    data = httpx.get(f"{server.base_url}/models", timeout=30).json()
    assert data["object"] == "list"
    card = next(c for c in data["data"] if c["id"] == server.model)
    assert card["object"] == "model"
    assert card["owned_by"] == "vllm"
    assert isinstance(card["root"], str) and card["root"]
    assert card["max_model_len"] == server.context
    assert card["permission"][0]["object"] == "model_permission"


def test_health_and_version(server) -> None:
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    version = httpx.get(f"{server.url}/version", timeout=30).json()["version"]
    assert isinstance(version, str) and version


def test_server_info_tells_emulator_from_vllm(server) -> None:
    from vibe_jet_tagging.servers.info import fetch_server_info

    info = fetch_server_info(server.base_url, server.api_key)
    assert info.vllm
    assert info.require(server.model).max_model_len == server.context
    assert info.emulated is (server.kind == "emulated")


# -- answers --------------------------------------------------------------------------------------


def test_completion_shape(server) -> None:
    body = {"messages": HI, "max_tokens": 8, "temperature": 0, "reasoning_effort": "low"}
    data = post(server, body).json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == server.model
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] in ("stop", "length")
    content = choice["message"]["content"]
    # A reasoning model cut by max_tokens may have no answer yet (content null).
    assert isinstance(content, str) or (content is None and choice["finish_reason"] == "length")
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 8
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    details = usage.get("prompt_tokens_details")
    assert details is None or 0 <= details["cached_tokens"] <= usage["prompt_tokens"]


# -- the prefix cache -----------------------------------------------------------------------------


def metrics(server) -> dict[str, float]:
    """``/metrics`` as ``{name: value}``, summed over label sets; ``block_size`` from the
    cache's configuration (vLLM's ``vllm:cache_config_info``)."""
    out: dict[str, float] = {}
    for line in httpx.get(f"{server.url}/metrics", timeout=30).text.splitlines():
        match = re.match(r"([\w:]+)(\{.*\})? (\S+)$", line)
        if match and not line.startswith("#"):
            name, labels, value = match.groups()
            out[name] = out.get(name, 0.0) + float(value)
            if name == "vllm:cache_config_info":
                out["block_size"] = float(re.search(r'block_size="(\d+)"', labels).group(1))
    return out


def test_a_repeated_prompt_is_served_from_the_prefix_cache(server) -> None:
    """vLLM caches full blocks of prompt tokens; the last token is always computed again."""
    # A few blocks of the CPU build's 128 tokens; the random head keeps earlier runs out.
    listing = "\n".join(
        f"pt={3.1 * i:.3f} dy={0.01 * i:.3f} dphi={-0.02 * i:.3f}" for i in range(40)
    )
    content = f"Run {uuid.uuid4().hex}. Count the particles of this jet:\n{listing}"
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": 1, "temperature": 0}
    before = metrics(server)
    first, second = (post(server, body).json()["usage"] for _ in range(2))
    details = second["prompt_tokens_details"]
    if details is None and server.kind == "real":
        pytest.skip("start vLLM with --enable-prompt-tokens-details (usage reports no cache)")
    n, size = second["prompt_tokens"], int(before["block_size"])
    assert first["prompt_tokens"] == n > 2 * size
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    assert details["cached_tokens"] == (n - 1) // size * size
    assert 0 < details["cached_tokens"] <= n
    streamed = events(
        post(server, {**body, "stream": True, "stream_options": {"include_usage": True}})
    )
    assert (
        streamed[-2]["usage"]["prompt_tokens_details"]["cached_tokens"] == details["cached_tokens"]
    )
    after = metrics(server)
    queries = after["vllm:prefix_cache_queries_total"] - before["vllm:prefix_cache_queries_total"]
    hits = after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]
    assert queries >= 3 * n and hits >= 2 * details["cached_tokens"]


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_cuts_the_answer(server, name) -> None:
    data = post(server, {"messages": ASK_LABEL, name: 3}).json()
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("effort", ["none", "low", "medium", "high"])
def test_reasoning_effort_is_accepted(server, effort) -> None:
    response = post(server, {"messages": HI, "max_tokens": 2, "reasoning_effort": effort})
    assert response.status_code == 200, response.text


def test_stream(server) -> None:
    body = {
        "messages": HI,
        "max_tokens": 6,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    got = events(post(server, body))
    assert got[-1] == "[DONE]"
    usage_chunk, chunks = got[-2], got[:-2]
    assert usage_chunk["choices"] == []
    assert 0 < usage_chunk["usage"]["completion_tokens"] <= 6
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] in ("stop", "length")
    assert set(finishes[:-1]) == {None}


def test_stream_without_usage(server) -> None:
    got = events(post(server, {"messages": HI, "max_tokens": 3, "stream": True}))
    assert got[-1] == "[DONE]"
    assert all(e["choices"] for e in got[:-1])
    assert not any("usage" in e and e["usage"] for e in got[:-1])


def test_logprobs(server) -> None:
    body = {"messages": HI, "max_tokens": 2, "logprobs": True, "top_logprobs": 2, **NO_REASONING}
    content = post(server, body).json()["choices"][0]["logprobs"]["content"]
    assert len(content) == 2
    for entry in content:
        assert {"token", "logprob", "bytes", "top_logprobs"} <= set(entry)
        assert len(entry["top_logprobs"]) == 2
        assert entry["logprob"] <= 0


# -- structured outputs ---------------------------------------------------------------------------


def test_json_schema_answer_validates(server) -> None:
    body = {
        "messages": ASK_LABEL,
        "response_format": label_response_format(),
        "temperature": 0,
        **LOW,
    }
    choice = post(server, body).json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    jsonschema.validate(json.loads(choice["message"]["content"]), JetLabel.model_json_schema())


def test_json_object_answer_is_an_object(server) -> None:
    body = {
        "messages": ASK_LABEL,
        "response_format": {"type": "json_object"},
        "temperature": 0,
        **LOW,
    }
    choice = post(server, body).json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    assert isinstance(json.loads(choice["message"]["content"]), dict)


def test_structured_outputs_regex(server) -> None:
    """What the tagger sends to vLLM: compact JSON that cannot run away in whitespace."""
    body = {"messages": ASK_LABEL, "structured_outputs": {"regex": COMPACT_LABEL_REGEX}, **LOW}
    for _ in range(3):
        choice = post(server, body).json()["choices"][0]
        assert choice["finish_reason"] == "stop", choice
        assert re.fullmatch(COMPACT_LABEL_REGEX, choice["message"]["content"]), choice


def test_response_format_and_another_structured_output_conflict(server) -> None:
    """``response_format`` fills ``structured_outputs.json``: beside a regex, that is two."""
    body = {
        "messages": HI,
        "response_format": label_response_format(),
        "structured_outputs": {"regex": COMPACT_LABEL_REGEX},
        "max_tokens": 5,
    }
    error = expect_error(server, post(server, body), 400)
    assert "multiple are specified" in error["message"]


def test_response_format_overrides_structured_outputs_json(server) -> None:
    body = {
        "messages": ASK_LABEL,
        "response_format": label_response_format(),
        "structured_outputs": {"json": {"type": "object"}},
        **LOW,
    }
    choice = post(server, body).json()["choices"][0]
    jsonschema.validate(json.loads(choice["message"]["content"]), JetLabel.model_json_schema())


def test_structured_outputs_need_a_constraint(server) -> None:
    """``disable_any_whitespace`` alone is no constraint (and vLLM ignores it per request)."""
    body = {
        "messages": HI,
        "response_format": label_response_format(),
        "structured_outputs": {"disable_any_whitespace": True},
        "max_tokens": 5,
    }
    error = expect_error(server, post(server, body), 400)
    assert "structured outputs constraint" in error["message"]


# -- errors ---------------------------------------------------------------------------------------


def test_wrong_model_is_404(server) -> None:
    error = expect_error(server, post(server, {"model": "no-such-model", "messages": HI}), 404)
    assert error["type"] == "NotFoundError"
    assert error["param"] == "model"
    assert "`no-such-model` does not exist" in error["message"]
    assert server.model in error["message"]  # vLLM lists what it serves


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_beyond_the_context_is_400(server, name) -> None:
    error = expect_error(server, post(server, {"messages": HI, name: 16384}), 400)
    assert error["type"] == "BadRequestError"
    assert error["param"] == name
    assert (
        f"{name}=16384 cannot be greater than max_model_len={server.context}" in (error["message"])
    )


def test_prompt_beyond_the_context_is_400(server) -> None:
    messages = [{"role": "user", "content": "word " * (server.context + 200)}]
    error = expect_error(server, post(server, {"messages": messages, "max_tokens": 5}), 400)
    assert error["param"] == "input_tokens"
    assert f"maximum context length is {server.context} tokens" in error["message"]


def test_prompt_plus_max_tokens_beyond_the_context_is_allowed(server) -> None:
    """Only max_tokens alone is checked against the context; generation stops at its end."""
    body = {"messages": HI, "max_tokens": server.context - 2, "temperature": 0}
    response = post(server, body)
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] + usage["completion_tokens"] <= server.context


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"temperature": 5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_invalid_fields_are_400(server, extra, param) -> None:
    error = expect_error(server, post(server, {"messages": HI, **extra}), 400)
    assert param in (error["param"] or "")


def test_empty_conversation_is_400(server) -> None:
    expect_error(server, post(server, {"messages": []}), 400)


def test_malformed_body_is_400(server) -> None:
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        content=b'{"messages": [',
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    expect_error(server, response, 400)
