"""The OpenAI/vLLM wire protocol of the emulator: request validation, errors, logprobs."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .config import EmulatorConfig
from .model import Completion
from .schema import SchemaError, answer_for_schema
from .tokens import prompt_pieces

__all__ = ["ApiError", "ChatRequest", "effort_tokens", "logprobs_for", "parse_chat_request"]

# vLLM 0.32's efforts. The emulator reasons as long as its own low/medium/high (``minimal``
# as low, ``xhigh`` and ``max`` as high) and not at all for ``none``.
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_EFFORT_ALIASES = {"minimal": "low", "xhigh": "high", "max": "high"}
_CONSTRAINTS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")
_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}
_FILLER_TOKENS = (" the", ",", ".", " a", " and", " is", "\n", " of", " to", " jet")


class ApiError(Exception):
    """An error answer in vLLM's shape ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, outcome: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.outcome = outcome or f"error_{status}"

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        body = {
            "error": {
                "message": self.message,
                "type": _ERROR_TYPES.get(self.status, "Error"),
                "param": self.param,
                "code": self.status,
            }
        }
        return web.json_response(body, status=self.status, headers=headers)


@dataclass
class ChatRequest:
    """A validated chat completion request."""

    model: str
    messages: list[dict[str, Any]]
    effort: str
    max_tokens: int | None
    stream: bool
    include_usage: bool
    logprobs: bool
    top_logprobs: int
    seed: int | None
    response_format: dict[str, Any] | None
    prompt: list[str]
    """The prompt's tokens (:func:`.tokens.prompt_pieces`)."""
    tool_call: str | None = None
    """The function the answer calls (its arguments follow ``response_format``), if any."""

    @property
    def prompt_tokens(self) -> int:
        """Tokens in the prompt."""
        return len(self.prompt)


def effort_tokens(effort: str, config: EmulatorConfig) -> int:
    """How many reasoning tokens the emulator aims at for ``effort`` (0 for ``"none"``)."""
    if effort == "none":
        return 0
    return config.effort_tokens[_EFFORT_ALIASES.get(effort, effort)]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_chat_request(body: Any, config: EmulatorConfig) -> ChatRequest:
    """Validate a chat completion body like vLLM does; raise :class:`ApiError` when bad."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        model = config.models[0]
    if not isinstance(model, str) or model not in config.models:
        raise ApiError(
            404,
            f"The model `{model}` does not exist. Valid aliases: {', '.join(config.models)}.",
            param="model",
        )

    messages = body.get("messages")
    if not isinstance(messages, list):
        raise ApiError(400, "`messages` must be a list of messages.", param="messages")
    if not messages:
        raise ApiError(
            400,
            "Cannot apply chat template to an empty conversation. Provide at least one message.",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise ApiError(
                400,
                f"messages[{i}] must be an object with a role in {sorted(_ROLES)}.",
                param="messages",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise ApiError(
                400, f"messages[{i}].content must be a string or a list.", param="messages"
            )

    effort = body.get("reasoning_effort")
    if effort is None:
        effort = config.default_effort
    if effort not in _EFFORTS:
        raise ApiError(
            400,
            "reasoning_effort: Input should be 'none', 'minimal', 'low', 'medium', 'high', "
            f"'xhigh' or 'max', got {effort!r}.",
            param="body.reasoning_effort",
        )

    max_tokens = None
    for name in ("max_tokens", "max_completion_tokens"):  # the second wins, as in vLLM
        value = body.get(name)
        if value is None:
            continue
        if not _is_int(value) or value < 1:
            raise ApiError(
                400,
                f"{name} must be at least 1, got {value!r}. (parameter={name}, value={value})",
                param=name,
            )
        if value > config.max_model_len:
            raise ApiError(
                400,
                f"{name}={value} cannot be greater than max_model_len={config.max_model_len}. "
                f"Please request fewer output tokens. (parameter={name}, value={value})",
                param=name,
            )
        max_tokens = value

    temperature = body.get("temperature")
    if temperature is not None and (not _is_number(temperature) or not 0 <= temperature <= 2):
        raise ApiError(
            400, f"temperature must be in [0, 2], got {temperature!r}.", param="temperature"
        )
    top_p = body.get("top_p")
    if top_p is not None and (not _is_number(top_p) or not 0 < top_p <= 1):
        raise ApiError(400, f"top_p must be in (0, 1], got {top_p!r}.", param="top_p")
    n = body.get("n")
    if n is not None and (not _is_int(n) or n < 1):
        raise ApiError(400, f"n must be at least 1, got {n!r}.", param="n")
    if n is not None and n > 1:
        raise ApiError(400, "n > 1 is not supported by the emulated server.", param="n")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise ApiError(400, f"seed must be an integer, got {seed!r}.", param="seed")

    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise ApiError(400, "stream must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise ApiError(
                400, "Stream options can only be defined when `stream=True`.", param="stream"
            )
        if not isinstance(options, dict):
            raise ApiError(400, "stream_options must be an object.", param="stream_options")
    include_usage = bool((options or {}).get("include_usage"))

    logprobs = body.get("logprobs") or False
    top_logprobs = body.get("top_logprobs")
    if not isinstance(logprobs, bool):
        raise ApiError(400, "logprobs must be a boolean.", param="logprobs")
    if top_logprobs is not None:
        if not _is_int(top_logprobs) or not 0 <= top_logprobs <= 20:
            raise ApiError(
                400, f"top_logprobs must be in [0, 20], got {top_logprobs!r}.", param="top_logprobs"
            )
        if top_logprobs > 0 and not logprobs:
            raise ApiError(
                400, "when using `top_logprobs`, `logprobs` must be set to true.", param="logprobs"
            )

    # As in vLLM: `structured_outputs` must hold one constraint; `response_format` then
    # overrides its json/json_object field, and two different constraints are an error.
    structured = body.get("structured_outputs")
    from_structured = None if structured is None else _parse_structured_outputs(structured)
    response_format = _parse_response_format(body.get("response_format"))
    if response_format is None:
        response_format = from_structured
    elif from_structured is not None and _field(from_structured) != _field(response_format):
        raise ApiError(
            400,
            "You can only use one kind of structured outputs constraint but multiple are "
            f"specified: {structured} and response_format {response_format['type']}",
        )
    tool_call = _parse_tools(body, messages, config)
    if tool_call is not None:
        response_format = tool_call[1]
    prompt = prompt_pieces(messages)
    prompt_tokens = len(prompt)
    if prompt_tokens > config.max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {config.max_model_len} tokens. However, "
            f"your prompt contains at least {prompt_tokens} input tokens, which exceeds this "
            "limit even without any output tokens. Please reduce the length of the input "
            f"prompt. (parameter=input_tokens, value={prompt_tokens})",
            param="input_tokens",
        )
    # Like vLLM, generation stops where the context ends, whatever max_tokens says.
    room = config.max_model_len - prompt_tokens
    max_tokens = room if max_tokens is None else min(max_tokens, room)
    return ChatRequest(
        model=model,
        messages=messages,
        effort=effort,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=include_usage,
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        seed=seed,
        response_format=response_format,
        prompt=prompt,
        tool_call=None if tool_call is None else tool_call[0],
    )


def _parse_tools(
    body: dict[str, Any], messages: list[dict[str, Any]], config: EmulatorConfig
) -> tuple[str, dict[str, Any]] | None:
    """The function to call and its argument schema, from ``tools`` and ``tool_choice``.

    As vLLM: ``tool_choice`` defaults to ``"auto"`` when there are tools; ``auto``, ``required``
    and a named function need ``--tool-call-parser`` (``config.tool_call_parser``), else HTTP
    400. With one, ``required`` and ``auto`` call the first tool (``auto`` answers in text
    once the last message is a tool's result), a named choice calls that tool.
    """
    tools, choice = body.get("tools"), body.get("tool_choice")
    if not tools:
        if choice not in (None, "none"):
            raise ApiError(
                400,
                "When using `tool_choice`, `tools` must be set. (parameter=tool_choice)",
                param="tool_choice",
            )
        return None
    if not isinstance(tools, list) or not all(_is_function_tool(t) for t in tools):
        raise ApiError(
            400,
            "tools must be a list of {type: 'function', function: {name, parameters}}.",
            param="tools",
        )
    functions = {t["function"]["name"]: t["function"] for t in tools}
    if choice is None:
        choice = "auto"
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if choice.get("type") != "function" or name not in functions:
            raise ApiError(
                400,
                "The tool specified in `tool_choice` does not match any of the specified "
                "`tools` (parameter=tool_choice)",
                param="tool_choice",
            )
        needs = f'tool_choice=function "{name}" requires --tool-call-parser to be set'
    elif choice == "none":
        return None
    elif choice == "required":
        name, needs = (
            next(iter(functions)),
            'tool_choice="required" requires --tool-call-parser to be set',
        )
    elif choice == "auto":
        name = next(iter(functions))
        needs = (
            '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
        )
    else:
        raise ApiError(
            400,
            f'Invalid value for `tool_choice`: {choice}! Only named tools, "none", "auto" or '
            '"required" are supported. (parameter=tool_choice)',
            param="tool_choice",
        )
    if config.tool_call_parser is None:
        raise ApiError(400, needs)
    if choice == "auto" and messages[-1].get("role") == "tool":
        return None  # the tool answered: now the model answers in text
    schema = functions[name].get("parameters") or {"type": "object", "properties": {}}
    format_ = _parse_response_format(
        {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
    )
    assert format_ is not None
    return str(name), format_


def _is_function_tool(tool: Any) -> bool:
    if not isinstance(tool, dict):
        return False
    function = tool.get("function")
    return (
        tool.get("type") == "function"
        and isinstance(function, dict)
        and isinstance(function.get("name"), str)
        and isinstance(function.get("parameters", {}), dict)
    )


def _parse_response_format(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    param = "response_format"
    if not isinstance(value, dict) or value.get("type") not in (
        "text",
        "json_object",
        "json_schema",
    ):
        raise ApiError(
            400,
            "response_format must be an object with type 'text', 'json_object' or 'json_schema'.",
            param=param,
        )
    if value["type"] == "text":
        return None
    if value["type"] == "json_object":
        return {"type": "json_object"}
    spec = value.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(schema, dict):
        raise ApiError(
            400, "response_format json_schema needs json_schema.schema (an object).", param=param
        )
    try:
        for is_quark in (True, False):
            answer_for_schema(schema, is_quark=is_quark, quark_probability=0.5 + 0.3 * is_quark)
    except SchemaError as exc:
        raise ApiError(400, f"Invalid response_format json_schema: {exc}", param=param) from None
    except RecursionError:
        raise ApiError(400, "Invalid response_format json_schema: too deep", param=param) from None
    return {"type": "json_schema", "schema": schema}


def _field(constraint: dict[str, Any]) -> str:
    """The ``structured_outputs`` field a parsed constraint sits in."""
    return {"json_schema": "json"}.get(constraint["type"], constraint["type"])


def _parse_structured_outputs(value: Any) -> dict[str, Any] | None:
    """vLLM's ``structured_outputs`` body field: exactly one constraint.

    The emulator answers ``json`` (a schema, like ``response_format``), ``json_object`` and
    ``regex`` when the regex accepts its compact label JSON; ``choice``, ``grammar`` and
    ``structural_tag`` it cannot emulate (HTTP 400 saying so).
    """
    if not isinstance(value, dict):
        raise ApiError(400, "structured_outputs must be an object.", param="structured_outputs")
    given = [name for name in _CONSTRAINTS if value.get(name) not in (None, False)]
    if not given:
        raise ApiError(
            400,
            "You must use one kind of structured outputs constraint but none are specified: "
            f"{value}",
        )
    if len(given) > 1:
        raise ApiError(
            400,
            "You can only use one kind of structured outputs constraint but multiple are "
            f"specified: {value}",
        )
    kind = given[0]
    if kind == "json":
        schema = value["json"]
        if isinstance(schema, str):
            try:
                schema = json.loads(schema)
            except ValueError:
                schema = None
        return _parse_response_format(
            {"type": "json_schema", "json_schema": {"name": "structured", "schema": schema}}
        )
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "regex":
        pattern = value["regex"]
        try:
            compiled = re.compile(pattern) if isinstance(pattern, str) else None
        except re.error:
            compiled = None
        samples = (
            '{"label":"quark","quark_probability":0.8}',
            '{"label":"gluon","quark_probability":0.2}',
        )
        if compiled is None or not all(compiled.fullmatch(s) for s in samples):
            raise ApiError(
                400,
                "structured_outputs.regex: the emulated server only answers regexes that "
                "accept its compact label JSON",
                param="structured_outputs",
            )
        return {"type": "regex", "pattern": pattern}
    raise ApiError(
        400,
        f"structured_outputs.{kind} is not supported by the emulated server",
        param="structured_outputs",
    )


def logprobs_for(completion: Completion, length: int, top: int) -> list[dict[str, Any]]:
    """Logprobs of the first ``length`` answer tokens (the decision tokens get both labels)."""
    rng = completion.rng
    chosen = min(max(completion.chosen_probability, 1e-6), 1 - 1e-6)
    entries = []
    for i, token in enumerate(completion.content[:length]):
        alternative = completion.decisions.get(i)
        if alternative is not None:
            alts = [(token, math.log(chosen)), (alternative, math.log(1 - chosen))]
            floor = -12.0
        else:
            alts = [(token, -0.0005 - 0.08 * rng.random())]
            floor = -4.0
        fillers = (t for t in _FILLER_TOKENS if t not in (token, alternative))
        while len(alts) < top:
            alts.append((next(fillers), floor - 1.5 * len(alts)))
        entries.append(
            {
                "token": token,
                "logprob": alts[0][1],
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alts[:top]
                ],
            }
        )
    return entries
