"""The emulated vLLM server's wire format, driven by the openai client and by raw HTTP."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import httpx
import jsonschema
import pytest
from openai import AsyncOpenAI, BadRequestError, NotFoundError, OpenAI

from vibe_jet_tagging.jets.formats import render_jet


def ask(jet: Any, text: str = "Is this jet a quark (1) or a gluon (0)?") -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You are a particle physicist."},
        {"role": "user", "content": f"{text}\n\n{render_jet(jet)}"},
    ]


@pytest.fixture
def client(emulator) -> OpenAI:
    with OpenAI(base_url=emulator.base_url, api_key="EMPTY", max_retries=0) as c:
        yield c


def post(server, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30, **kwargs)


# -- plain answers ----------------------------------------------------------------------------


def test_plain_completion_fields(emulator, make_jet) -> None:
    body = {"model": emulator.model, "messages": ask(make_jet("quark", 1))}
    data = post(emulator, body).json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == "openai/gpt-oss-120b"
    choice = data["choices"][0]
    assert choice["finish_reason"] == "stop"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"]
    assert "reasoning_content" not in message
    assert "constituents" in message["reasoning"]
    usage = data["usage"]
    reasoning_tokens = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning_tokens < usage["completion_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 100


def test_models_and_health(emulator) -> None:
    models = httpx.get(f"{emulator.base_url}/models").json()
    assert [m["id"] for m in models["data"]] == ["openai/gpt-oss-120b"]
    health = httpx.get(f"{emulator.url}/health")
    assert health.status_code == 200
    assert health.content == b""


def test_openai_client_sync_and_model_names(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(models=["openai/gpt-oss-20b", "small"])
    with OpenAI(base_url=server.base_url, api_key="x") as c:
        assert {m.id for m in c.models.list()} == {"openai/gpt-oss-20b", "small"}
        reply = c.chat.completions.create(model="small", messages=ask(make_jet("gluon")))
    assert reply.model == "small"
    assert reply.choices[0].message.content
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0


async def test_openai_client_async(emulator, make_jet) -> None:
    async with AsyncOpenAI(base_url=emulator.base_url, api_key="x") as c:
        reply = await c.chat.completions.create(
            model=emulator.model, messages=ask(make_jet("quark")), reasoning_effort="low"
        )
        stream = await c.chat.completions.create(
            model=emulator.model,
            messages=ask(make_jet("quark")),
            reasoning_effort="low",
            stream=True,
        )
        text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream])
    assert text == reply.choices[0].message.content


# -- streaming ---------------------------------------------------------------------------------


def _events(response: httpx.Response) -> list[Any]:
    assert response.headers["content-type"].startswith("text/event-stream")
    events = []
    for block in response.text.split("\n\n"):
        if block:
            assert block.startswith("data: ")
            payload = block[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def test_stream_reasoning_then_content_then_usage(emulator, make_jet) -> None:
    messages = ask(make_jet("gluon", 2))
    plain = post(emulator, {"messages": messages}).json()
    body = {"messages": messages, "stream": True, "stream_options": {"include_usage": True}}
    events = _events(post(emulator, body))
    assert events[-1] == "[DONE]"
    usage_chunk = events[-2]
    assert usage_chunk["choices"] == []
    # The same prompt again: now from the prefix cache, all but its last (partial) block.
    cached = usage_chunk["usage"].pop("prompt_tokens_details")
    assert plain["usage"].pop("prompt_tokens_details")["cached_tokens"] <= cached["cached_tokens"]
    assert cached["cached_tokens"] == (plain["usage"]["prompt_tokens"] - 1) // 16 * 16
    assert usage_chunk["usage"] == plain["usage"]
    chunks = events[:-2]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    kinds = [
        "reasoning" if "reasoning" in c["choices"][0]["delta"] else "content" for c in chunks[1:]
    ]
    first_content = kinds.index("content")
    assert kinds[:first_content] == ["reasoning"] * first_content > []
    assert set(kinds[first_content:]) == {"content"}
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning", "") for c in chunks)
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert reasoning == plain["choices"][0]["message"]["reasoning"]
    assert content == plain["choices"][0]["message"]["content"]
    finishes = [c["choices"][0]["finish_reason"] for c in chunks]
    assert finishes[-1] == "stop"
    assert set(finishes[:-1]) == {None}


def test_stream_without_usage_option(emulator, make_jet) -> None:
    events = _events(post(emulator, {"messages": ask(make_jet()), "stream": True}))
    assert events[-1] == "[DONE]"
    assert all(e["choices"] for e in events[:-1])


# -- reasoning effort and fields ---------------------------------------------------------------


def test_effort_lengths(emulator, make_jet) -> None:
    means = {}
    for effort in ("low", "medium", "high"):
        counts = []
        for seed in range(8):
            body = {"messages": ask(make_jet("quark", seed)), "reasoning_effort": effort}
            usage = post(emulator, body).json()["usage"]
            counts.append(usage["completion_tokens_details"]["reasoning_tokens"])
        means[effort] = sum(counts) / len(counts)
        assert min(counts) < max(counts)  # the seeded spread
    assert means["low"] < means["medium"] < means["high"]
    for effort, target in (("low", 120), ("medium", 370), ("high", 2000)):
        assert abs(means[effort] - target) < 0.12 * target, means
    no_effort = post(emulator, {"messages": ask(make_jet("quark", 0))}).json()
    medium = post(
        emulator, {"messages": ask(make_jet("quark", 0)), "reasoning_effort": "medium"}
    ).json()
    assert no_effort["usage"] == medium["usage"]


@pytest.mark.parametrize(
    ("field", "present", "absent"),
    [
        ("reasoning", {"reasoning"}, {"reasoning_content"}),
        ("reasoning_content", {"reasoning_content"}, {"reasoning"}),
        ("both", {"reasoning", "reasoning_content"}, set()),
    ],
)
def test_reasoning_field_switch(fresh_emulator, make_jet, field, present, absent) -> None:
    server = fresh_emulator(reasoning_field=field)
    message = post(server, {"messages": ask(make_jet())}).json()["choices"][0]["message"]
    assert all(message[k] for k in present)
    assert not absent & set(message)
    deltas = [
        e["choices"][0]["delta"]
        for e in _events(post(server, {"messages": ask(make_jet()), "stream": True}))[:-1]
    ]
    streamed = {k for d in deltas for k in d if k.startswith("reasoning")}
    assert streamed == present


def test_reasoning_tokens_can_be_null(fresh_emulator, make_jet) -> None:
    server = fresh_emulator(report_reasoning_tokens=False)
    usage = post(server, {"messages": ask(make_jet())}).json()["usage"]
    assert usage["completion_tokens_details"] is None
    assert usage["completion_tokens"] > 0


# -- structured outputs ------------------------------------------------------------------------

LABEL_SCHEMA = {
    "$defs": {"Label": {"enum": ["quark", "gluon"], "type": "string"}},
    "type": "object",
    "properties": {
        "label": {"$ref": "#/$defs/Label"},
        "quark_probability": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string"},
        "confidence": {"anyOf": [{"type": "number"}, {"type": "null"}]},
    },
    "required": ["label", "quark_probability"],
    "additionalProperties": False,
}
SCHEMAS = [
    LABEL_SCHEMA,
    {
        "type": "object",
        "properties": {"is_quark": {"type": "integer", "minimum": 0, "maximum": 1}},
        "required": ["is_quark"],
    },
    {
        "type": "object",
        "properties": {
            "answer": {"type": "object", "properties": {"gluon": {"type": "boolean"}}},
            "scores": {"type": "array", "items": {"type": "number"}, "minItems": 2},
            "label": {"type": "string", "enum": ["Q", "G"]},
            "multiplicity": {"type": "integer"},
        },
        "required": ["answer", "scores", "label", "multiplicity"],
    },
    {"type": "string", "pattern": "^(quark|gluon)$"},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("kind", ["quark", "gluon"])
def test_json_schema_answers_validate(client, emulator, make_jet, schema, kind) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": True}}
    for seed in range(3):
        jet = make_jet(kind, seed)
        reply = client.chat.completions.create(
            model=emulator.model, messages=ask(jet), response_format=fmt, reasoning_effort="low"
        )
        value = json.loads(reply.choices[0].message.content)
        jsonschema.validate(value, schema)
        label = reply.choices[0].message.model_extra["reasoning"].rsplit("answer ", 1)[1][:5]
        if schema is LABEL_SCHEMA:
            assert value["label"] == label
            assert (value["quark_probability"] >= 0.5) == (label == "quark")
        if "multiplicity" in schema.get("properties", {}):
            assert value["multiplicity"] == len(jet)
            assert value["answer"]["gluon"] == (label == "gluon")


def test_json_object(emulator, make_jet) -> None:
    body = {"messages": ask(make_jet()), "response_format": {"type": "json_object"}}
    value = json.loads(post(emulator, body).json()["choices"][0]["message"]["content"])
    assert set(value) == {"label", "quark_probability"}
    assert value["label"] in ("quark", "gluon")
    assert 0 <= value["quark_probability"] <= 1


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {}, "required": ["x"], "additionalProperties": False},
        {"type": "number", "minimum": 2, "maximum": 1},
        {"type": "string", "pattern": "^z+$"},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "tensor"},
    ],
)
def test_unsatisfiable_schema_is_400(emulator, make_jet, schema) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    response = post(emulator, {"messages": ask(make_jet()), "response_format": fmt})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "response_format"


# -- free text -----------------------------------------------------------------------------------

STYLES = {
    "final_answer": re.compile(r"Final answer: [01]$"),
    "bold": re.compile(r"^\*\*(Quark|Gluon)\*\*$"),
    "json_fence": re.compile(r"^```json\n\{.*\}\n```\n", re.S),
    "so_answer": re.compile(r"so the answer is [01]\.$"),
    "hedged": re.compile(r"^A (quark|gluon) \([01]\).*(quark|gluon): [01]$", re.S),
}


def _last_answer(text: str) -> str:
    """The LAST label in an answer (what a careful parser reads)."""
    found = re.findall(r"\b(quark|gluon|[01])\b(?!\.\d)", text, re.I)
    return {"1": "quark", "0": "gluon"}.get(found[-1], found[-1].lower())


def test_free_text_styles_and_last_answer(emulator, make_jet) -> None:
    seen: set[str] = set()
    for seed in range(40):
        body = {"messages": ask(make_jet("quark" if seed % 2 else "gluon", seed)), "seed": seed}
        message = post(emulator, body).json()["choices"][0]["message"]
        content = message["content"]
        styles = [name for name, pattern in STYLES.items() if pattern.search(content)]
        assert len(styles) == 1, content
        seen.add(styles[0])
        label = message["reasoning"].rsplit("answer ", 1)[1].rstrip(".")
        if styles[0] == "json_fence":
            assert json.loads(content.split("\n")[1])["label"] == label
        else:
            assert _last_answer(content) == label, content
    assert seen == set(STYLES)


# -- max_tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
def test_budget_spent_in_reasoning(emulator, make_jet, name) -> None:
    body = {"messages": ask(make_jet()), name: 25}
    data = post(emulator, body).json()
    choice = data["choices"][0]
    assert choice["finish_reason"] == "length"
    assert not choice["message"]["content"]
    assert data["usage"]["completion_tokens"] == 25
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 25
    events = _events(post(emulator, {**body, "stream": True}))
    assert not any(e["choices"][0]["delta"].get("content") for e in events[1:-1])
    assert events[-2]["choices"][0]["finish_reason"] == "length"


def test_budget_cuts_the_answer(emulator, make_jet) -> None:
    messages = ask(make_jet("gluon", 4))
    full = post(emulator, {"messages": messages, "response_format": {"type": "json_object"}})
    full = full.json()
    reasoning = full["usage"]["completion_tokens_details"]["reasoning_tokens"]
    body = {
        "messages": messages,
        "response_format": {"type": "json_object"},
        "max_tokens": reasoning + 5,
    }
    cut = post(emulator, body).json()
    assert cut["choices"][0]["finish_reason"] == "length"
    text = cut["choices"][0]["message"]["content"]
    assert text
    assert full["choices"][0]["message"]["content"].startswith(text)
    assert text != full["choices"][0]["message"]["content"]
    assert cut["usage"]["completion_tokens"] == reasoning + 5
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


# -- logprobs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["quark", "gluon"])
def test_logprobs_match_the_probability(client, emulator, make_jet, kind) -> None:
    reply = client.chat.completions.create(
        model=emulator.model,
        messages=ask(make_jet(kind, 3)),
        response_format={"type": "json_object"},
        logprobs=True,
        top_logprobs=3,
    )
    answer = json.loads(reply.choices[0].message.content)
    entries = reply.choices[0].logprobs.content
    assert "".join(e.token for e in entries) == reply.choices[0].message.content
    label_entry = next(e for e in entries if e.token.strip() in ("quark", "gluon"))
    assert label_entry.token.strip() == answer["label"]
    assert len(label_entry.top_logprobs) == 3
    alternatives = {t.token.strip(): t.logprob for t in label_entry.top_logprobs}
    p_quark = math.exp(alternatives["quark"]) / (
        math.exp(alternatives["quark"]) + math.exp(alternatives["gluon"])
    )
    assert p_quark == pytest.approx(answer["quark_probability"], abs=0.006)
    assert label_entry.logprob == max(alternatives.values())
    for entry in entries:
        assert entry.top_logprobs[0].token == entry.token
        assert entry.logprob <= 0


def test_logprobs_free_text_decision_token(emulator, make_jet) -> None:
    for seed in range(6):
        body = {"messages": ask(make_jet()), "seed": seed, "logprobs": True, "top_logprobs": 2}
        choice = post(emulator, body).json()["choices"][0]
        entries = choice["logprobs"]["content"]
        decisive = [
            e
            for e in entries
            if {t["token"].strip().lower() for t in e["top_logprobs"]}
            in ({"0", "1"}, {"quark", "gluon"})
        ]
        assert decisive, choice
        for entry in decisive:
            assert entry["token"] == entry["top_logprobs"][0]["token"]
            assert entry["logprob"] >= math.log(0.5)


def test_no_logprobs_unless_asked(emulator, make_jet) -> None:
    assert post(emulator, {"messages": ask(make_jet())}).json()["choices"][0]["logprobs"] is None


# -- determinism -------------------------------------------------------------------------------


def test_same_seed_same_answers(fresh_emulator, make_jet) -> None:
    def answers(server, request_seed=None) -> list[str]:
        out = []
        for i in range(8):
            body = {"messages": ask(make_jet("quark", i)), "temperature": 1.0}
            if request_seed is not None:
                body["seed"] = request_seed
            message = post(server, body).json()["choices"][0]["message"]
            out.append(message["content"] + message["reasoning"])
        return out

    a, b, c = (fresh_emulator(seed=s) for s in (1, 1, 2))
    assert answers(a) == answers(b)
    assert answers(a) != answers(c)
    assert answers(a, 5) == answers(b, 5)
    assert answers(a, 5) != answers(a, 6)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        # Also checked against a real vLLM in tests/contract: wrong model, efforts, budgets.
        ({}, 400, "messages"),
        ({"messages": [{"content": "no role"}]}, 400, "messages"),
        ({"messages": [{"role": "user", "content": "x"}], "max_tokens": -1}, 400, "max_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 0}, 400,
         "max_completion_tokens"),
        ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, 400, "temperature"),
        ({"messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "n"),
        ({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, 400, "logprobs"),
        ({"messages": [{"role": "user", "content": "x"}], "stream_options": {}}, 400, "stream"),
        ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}},
         400, "response_format"),
        ([1, 2], 400, None),
    ],
)  # fmt: skip
def test_error_shape(emulator, body, status, param) -> None:
    response = post(emulator, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status
    assert error["param"] == param
    assert error["type"] == {400: "BadRequestError", 404: "NotFoundError"}[status]


def test_malformed_body_is_400(emulator) -> None:
    response = httpx.post(
        f"{emulator.base_url}/chat/completions",
        content=b'{"messages": [',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "BadRequestError"


def test_errors_through_the_openai_client(client) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(BadRequestError):
        client.chat.completions.create(
            model="openai/gpt-oss-120b",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"reasoning_effort": "extreme"},
        )


def test_counters_by_outcome(emulator, make_jet) -> None:
    emulator.reset_stats()
    post(emulator, {"messages": ask(make_jet())})
    post(emulator, {"messages": []})
    post(emulator, {"model": "x", "messages": ask(make_jet())})
    stats = emulator.stats()
    assert stats["requests_total"] == 3
    assert stats["outcomes"] == {"ok": 1, "error_400": 1, "error_404": 1}
    assert stats["generation_tokens"] > stats["reasoning_tokens"] > 0
    metrics = httpx.get(f"{emulator.url}/metrics").text
    assert 'vllm:num_requests_running{model_name="openai/gpt-oss-120b"} 0.0' in metrics
    assert "vllm:num_requests_waiting" in metrics
    assert 'vjt_emulator:requests_total{model_name="openai/gpt-oss-120b",outcome="ok"} 1.0' in (
        metrics
    )
