"""``vjt serve --emulate``: run the emulated vLLM server (a physics heuristic, not a model)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .app import CLIError, app, console

# The emulator (aiohttp, jsonschema) is imported when the command runs, not for --help;
# tests/unit/test_cli_startup.py checks that this list is emulator.LATENCY_PRESETS.
PRESETS = ("instant", "gpt-oss-120b-h100", "gpt-oss-20b-h100", "demo")

_REAL_SERVER = (
    "vjt serve only runs the emulated server (--emulate); start a real one with "
    "`vllm serve openai/gpt-oss-120b`."
)


# The emulator's fault names (emulator.config.FaultRates), kept here so --help imports
# nothing; tests/unit/test_cli_startup.py checks that the two lists are the same.
FAULTS = (
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
)


def _named_faults(given: list[str]) -> dict[str, float]:
    """``--fault NAME=RATE`` values as fault rates; a bad one is a one-line error."""
    rates: dict[str, float] = {}
    for item in given:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in FAULTS:
            raise CLIError(
                f"--fault {item!r}: expected NAME=RATE with NAME one of {', '.join(FAULTS)}"
            )
        try:
            rates[name] = float(value)
        except ValueError:
            raise CLIError(f"--fault {item!r}: the rate {value!r} is not a number") from None
    return rates


@app.command("serve")
def serve_command(
    emulate: Annotated[
        bool, typer.Option("--emulate", help="Run the emulated server (required).")
    ] = False,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8000,
    model: Annotated[
        list[str] | None, typer.Option("--model", help="Served model name (repeatable).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of answers and faults.")] = None,
    reasoning_field: Annotated[
        str | None, typer.Option(help="reasoning | reasoning_content | both")
    ] = None,
    reasoning_tokens: Annotated[
        bool,
        typer.Option(
            "--reasoning-tokens/--no-reasoning-tokens",
            help="Report the reasoning tokens in the usage (completion_tokens_details); "
            "many vLLM versions send null there.",
        ),
    ] = True,
    preset: Annotated[
        str | None, typer.Option(help=f"Latency preset: {', '.join(PRESETS)}.")
    ] = None,
    ttft: Annotated[float | None, typer.Option(help="Time to first token, seconds.")] = None,
    itl: Annotated[float | None, typer.Option(help="Seconds per generated token.")] = None,
    max_num_seqs: Annotated[int | None, typer.Option(help="Sequences run at once.")] = None,
    max_queue: Annotated[int | None, typer.Option(help="Waiting requests allowed.")] = None,
    noise: Annotated[float | None, typer.Option(help="Noise on the heuristic's logit.")] = None,
    fail_rate: Annotated[
        float | None,
        typer.Option("--fail-rate", "--server-error-rate", help="Rate of HTTP 500 answers."),
    ] = None,
    rate_limit_rate: Annotated[float | None, typer.Option(help="Rate of HTTP 429.")] = None,
    stall_rate: Annotated[float | None, typer.Option(help="Rate of stalled requests.")] = None,
    stall_seconds: Annotated[float | None, typer.Option(help="Length of a stall, s.")] = None,
    disconnect_rate: Annotated[
        float | None, typer.Option(help="Rate of connections dropped mid-answer.")
    ] = None,
    malformed_json_rate: Annotated[
        float | None, typer.Option(help="Rate of broken JSON answers.")
    ] = None,
    truncation_rate: Annotated[
        float | None, typer.Option(help="Rate of answers cut with finish_reason length.")
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(
            help="Any fault by name, NAME=RATE (repeatable), e.g. contradiction=0.1: "
            + ", ".join(FAULTS)
            + "."
        ),
    ] = None,
    tool_call_parser: Annotated[
        str | None,
        typer.Option(
            help="Answer tool calls, as vLLM with --enable-auto-tool-choice --tool-call-parser "
            "NAME (default: none; tool_choice is then refused with HTTP 400, as vLLM does)."
        ),
    ] = None,
) -> None:
    """Serve the emulated vLLM (OpenAI-compatible) API until Ctrl-C or SIGTERM.

    Its answers come from a physics heuristic (the jet's multiplicity and width), not from a
    language model: use it to exercise clients, never to judge a model.
    """
    if not emulate:
        raise CLIError(_REAL_SERVER)  # one "error:" line, exit 2, as every bad input
    from pydantic import ValidationError

    from ..emulator import EmulatorConfig, serve
    from ..errors import one_line

    settings: dict[str, Any] = {
        "models": model or None,
        "seed": seed,
        "reasoning_field": reasoning_field,
        "max_num_seqs": max_num_seqs,
        "max_queue": max_queue,
        "noise": noise,
        "stall_seconds": stall_seconds,
        "ttft": ttft,
        "itl": itl,
        "tool_call_parser": tool_call_parser,
    }
    faults = {
        "server_error": fail_rate,
        "rate_limit": rate_limit_rate,
        "stall": stall_rate,
        "disconnect": disconnect_rate,
        "malformed_json": malformed_json_rate,
        "truncation": truncation_rate,
    }
    overrides: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    overrides["report_reasoning_tokens"] = reasoning_tokens
    overrides["faults"] = {k: v for k, v in faults.items() if v is not None}
    overrides["faults"].update(_named_faults(fault or []))
    try:
        config = EmulatorConfig()
        if preset is not None:
            config = config.with_preset(preset)  # explicit --ttft/--itl still win
        config = config.merged(overrides)
    except ValidationError as exc:
        raise CLIError(f"bad emulator settings: {one_line(exc)}") from None
    except ValueError as exc:
        raise CLIError(f"bad emulator settings: {exc}") from None

    def ready(url: str) -> None:
        console.print(
            f"Emulated vLLM server on {url}/v1 serving {', '.join(config.models)}. "
            "Its answers come from a physics heuristic, not a language model. Ctrl-C stops it.",
            highlight=False,
            soft_wrap=True,
        )

    serve(config, host=host, port=port, on_ready=ready)
    console.print("emulated server stopped", highlight=False)
