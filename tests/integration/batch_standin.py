"""A stand-in for ``vllm run-batch``: request lines in, vLLM's output lines out, over HTTP.

It POSTs each line's body to a server's ``/v1/chat/completions`` (the emulated server in the
tests) and writes what ``vllm run-batch`` writes (``vllm/entrypoints/openai/run_batch.py``):
``{id, custom_id, response: {status_code, request_id, body}, error}``. ``fail`` makes chosen
lines fail the ways real output files do.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

FAILURES = ("exception", "http500", "malformed", "expired")
"""``exception``: vLLM's error line (400, no body, a message); ``http500``: an ErrorResponse;
``malformed``: a 200 whose body has no choices; ``expired``: the OpenAI Batch API's error line
(no response)."""


def answer_lines(
    requests: Iterable[Mapping[str, Any]], base_url: str, fail: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The output lines for ``requests``, asked one after another."""
    fail = fail or {}
    root = base_url.removesuffix("/v1")
    out = []
    with httpx.Client(timeout=60) as client:
        for request in requests:
            custom_id = request["custom_id"]
            how = fail.get(custom_id)
            request_id = f"vllm-batch-{uuid.uuid4().hex}"
            if how == "exception":
                response: Any = {"status_code": 400, "request_id": request_id, "body": None}
                error: Any = "Expecting value: line 1 column 1 (char 0)"
            elif how == "http500":
                response = {"status_code": 500, "request_id": request_id, "body": None}
                error = {
                    "error": {"message": "engine step failed", "type": "Internal", "code": 500}
                }
            elif how == "expired":
                response = None
                error = {"code": "batch_expired", "message": "not processed in the window"}
            else:
                answer = client.post(root + request["url"], json=request["body"])
                if answer.status_code == 200:
                    body = answer.json()
                    if how == "malformed":
                        body = {
                            "id": body["id"],
                            "object": "chat.completion",
                            "model": body["model"],
                        }
                    response = {"status_code": 200, "request_id": request_id, "body": body}
                    error = None
                else:
                    response = {"status_code": answer.status_code, "request_id": request_id}
                    response["body"] = None
                    error = answer.json()
            out.append(
                {
                    "id": f"vllm-{uuid.uuid4().hex}",
                    "custom_id": custom_id,
                    "response": response,
                    "error": error,
                }
            )
    return out


def run_batch(
    input_file: Path, output_file: Path, base_url: str, fail: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """``vllm run-batch -i input_file -o output_file`` against the server at ``base_url``."""
    requests = [json.loads(line) for line in input_file.read_text().splitlines() if line]
    lines = answer_lines(requests, base_url, fail)
    output_file.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines
