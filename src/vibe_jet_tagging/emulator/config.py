"""Settings of the emulated vLLM server: :class:`EmulatorConfig` and :class:`FaultRates`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "FAULT_KINDS",
    "LATENCY_PRESETS",
    "EmulatorConfig",
    "FaultKind",
    "FaultRates",
    "ReasoningField",
]

ReasoningField = Literal["reasoning", "reasoning_content", "both"]
FaultKind = Literal[
    "server_error",
    "rate_limit",
    "stall",
    "disconnect",
    "malformed_json",
    "truncation",
    "contradiction",
    "wrong_type",
    "non_answer",
    "digit_field",
    "distracted_answer",
    "malformed_body",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]

LATENCY_PRESETS: dict[str, dict[str, float]] = {
    # Answers at once: what the tests use.
    "instant": {"ttft": 0.0, "itl": 0.0, "itl_load_factor": 0.0},
    # gpt-oss-120b on one H100 (STACK_NOTES: low ~120 tokens / 0.8 s, medium ~370 / 2.6 s,
    # high ~2,000 / 12 s alone; 100 concurrent jets in 39 s instead of 340 s one by one).
    "gpt-oss-120b-h100": {"ttft": 0.05, "itl": 0.0065, "itl_load_factor": 0.1},
    # gpt-oss-20b on one H100: roughly 1.6x faster per token.
    "gpt-oss-20b-h100": {"ttft": 0.03, "itl": 0.004, "itl_load_factor": 0.08},
    # gpt-oss-120b-h100's shape about 30 times faster: time to first token plus a time per
    # generated token, so an answer takes longer at a higher effort as on vLLM (medium about
    # 0.1 s, high about 0.4 s), in seconds a demo can wait. What `vjt demo` and `--emulate` use.
    "demo": {"ttft": 0.02, "itl": 0.0002, "itl_load_factor": 0.0},
}
"""Named latency settings for :meth:`EmulatorConfig.with_preset` (``--preset`` on the CLI)."""


class FaultRates(BaseModel):
    """Probability of each injected fault, decided once per valid chat request.

    One uniform draw per request picks at most one fault (the rates are stacked, so their sum
    must stay <= 1). A retry is a new request with a new draw, so it can succeed.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    server_error: float = Field(0.0, ge=0, le=1, description="HTTP 500 InternalServerError")
    rate_limit: float = Field(0.0, ge=0, le=1, description="HTTP 429 with a Retry-After header")
    stall: float = Field(
        0.0, ge=0, le=1, description="wait stall_seconds before answering (client timeout)"
    )
    disconnect: float = Field(
        0.0, ge=0, le=1, description="drop the connection in the middle of the response"
    )
    malformed_json: float = Field(
        0.0, ge=0, le=1, description="answer content is cut or invalid JSON, finish 'stop'"
    )
    truncation: float = Field(
        0.0, ge=0, le=1, description="answer cut short with finish_reason 'length'"
    )
    # Answer faults (see emulator.faults): the answer states no label, except distracted_answer.
    contradiction: float = Field(
        0.0, ge=0, le=1, description="JSON whose label disagrees with its quark_probability"
    )
    wrong_type: float = Field(
        0.0, ge=0, le=1, description='JSON with wrong types ("quark_probability": "high")'
    )
    non_answer: float = Field(
        0.0, ge=0, le=1, description="prose that hedges, refuses or holds only stray digits"
    )
    digit_field: float = Field(
        0.0, ge=0, le=1, description="an answer whose only 0/1 is in a field name or other field"
    )
    distracted_answer: float = Field(
        0.0, ge=0, le=1, description="prose stating a random label among distractors"
    )
    malformed_body: float = Field(
        0.0, ge=0, le=1, description="HTTP 200 whose body is no chat completion (HTML, no choices)"
    )

    @model_validator(mode="after")
    def _sum_at_most_one(self) -> FaultRates:
        total = sum(getattr(self, k) for k in FAULT_KINDS)
        if total > 1 + 1e-9:
            raise ValueError(f"fault rates add up to {total:g}; their sum must be at most 1")
        return self

    @property
    def total(self) -> float:
        """Probability that a request gets some fault."""
        return sum(getattr(self, k) for k in FAULT_KINDS)


class EmulatorConfig(BaseModel):
    """Everything the emulated server does, with defaults that answer at once.

    The "model" behind it is a physics heuristic (multiplicity and width of the jet), not a
    language model: see :mod:`vibe_jet_tagging.emulator.model`.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    models: list[str] = Field(
        default_factory=lambda: ["openai/gpt-oss-120b"],
        min_length=1,
        description="served model names; the first is the default when a request names none",
    )
    seed: int = Field(0, description="seeds answers (with the prompt and request seed) and faults")
    reasoning_field: ReasoningField = Field(
        "reasoning",
        description="message/delta field of the reasoning: current vLLM 'reasoning', older "
        "'reasoning_content', or both",
    )
    report_reasoning_tokens: bool = Field(
        True,
        description="send usage.completion_tokens_details.reasoning_tokens; False sends "
        "completion_tokens_details null as many vLLM versions do",
    )
    effort_tokens: dict[str, int] = Field(
        default_factory=lambda: {"low": 120, "medium": 370, "high": 2000},
        description="mean reasoning length in tokens for each reasoning_effort",
    )
    effort_spread: float = Field(
        0.2, ge=0, lt=1, description="reasoning length varies uniformly within +-this fraction"
    )
    default_effort: Literal["low", "medium", "high"] = "medium"
    noise: float = Field(
        0.5, ge=0, description="standard deviation of the seeded noise added to the logit"
    )
    ttft: float = Field(0.0, ge=0, description="time to first token [s]")
    itl: float = Field(0.0, ge=0, description="inter-token latency [s per generated token]")
    itl_load_factor: float = Field(
        0.0,
        ge=0,
        description="batching slowdown: itl is multiplied by 1 + factor * (running - 1)",
    )
    stream_chunk_tokens: int = Field(
        4, ge=1, description="tokens per streamed chunk (vLLM sends 1; larger is cheaper)"
    )
    max_num_seqs: int = Field(256, ge=1, description="sequences generated at once; others wait")
    max_queue: int | None = Field(
        None, ge=0, description="waiting requests allowed; past it the server refuses (None: any)"
    )
    queue_full_status: Literal[429, 503] = 503
    max_model_len: int = Field(131072, ge=1, description="context length: prompt + max_tokens")
    enable_prefix_caching: bool = Field(
        True, description="vLLM's automatic prefix caching (on by default in vLLM)"
    )
    block_size: int = Field(
        16, ge=1, description="tokens per KV-cache block: vLLM's --block-size (16; CPU build 128)"
    )
    kv_cache_blocks: int = Field(
        8192, ge=0, description="blocks the prefix cache holds; the least recently used go first"
    )
    enable_prompt_tokens_details: bool = Field(
        True,
        description="vLLM's --enable-prompt-tokens-details: usage.prompt_tokens_details with "
        "cached_tokens; False sends it null (vLLM's default)",
    )
    faults: FaultRates = Field(default_factory=FaultRates)
    crash_on_seed: bool = Field(
        False,
        description="as vLLM's CPU build 0.32 does: a request with a seed kills the engine "
        "(HTTP 500 for it and every request after, /health 503)",
    )
    stall_seconds: float = Field(30.0, ge=0, description="how long a 'stall' fault waits")
    retry_after: float = Field(
        1.0, ge=0, description="seconds in the Retry-After header of a 'rate_limit' fault"
    )
    tool_call_parser: str | None = Field(
        None,
        description="like vLLM's --tool-call-parser (with --enable-auto-tool-choice): None "
        "refuses tool_choice auto, required and named with HTTP 400, as vLLM without the flag "
        "does; any name answers them with a tool call",
    )

    @field_validator("effort_tokens")
    @classmethod
    def _check_efforts(cls, value: dict[str, int]) -> dict[str, int]:
        missing = {"low", "medium", "high"} - set(value)
        if missing:
            raise ValueError(f"effort_tokens needs low, medium and high; missing {sorted(missing)}")
        if any(v < 1 for v in value.values()):
            raise ValueError("effort_tokens must be positive")
        return value

    def merged(self, overrides: dict[str, Any]) -> EmulatorConfig:
        """A validated copy with ``overrides`` applied; ``faults`` merges key by key."""
        data = self.model_dump()
        for key, value in overrides.items():
            if key == "faults" and isinstance(value, dict | FaultRates):
                extra = value.model_dump() if isinstance(value, FaultRates) else value
                data["faults"] = {**data["faults"], **extra}
            else:
                data[key] = value
        return EmulatorConfig.model_validate(data)

    def with_preset(self, name: str) -> EmulatorConfig:
        """A copy with the latency settings of :data:`LATENCY_PRESETS` ``[name]``."""
        try:
            preset = LATENCY_PRESETS[name]
        except KeyError:
            known = ", ".join(LATENCY_PRESETS)
            raise ValueError(f"unknown latency preset {name!r}; known: {known}") from None
        return self.merged(preset)
