"""What a chat model sends, recorded: :class:`Wire` (an httpx event hook on its own client)."""

from __future__ import annotations

import json

import openai


class Wire:
    """Records the JSON bodies a model sends (an httpx event hook on its own client)."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []

    def client(self) -> openai.DefaultAsyncHttpxClient:
        async def hook(request) -> None:
            if request.url.path.endswith("/chat/completions"):
                self.bodies.append(json.loads(request.content))

        return openai.DefaultAsyncHttpxClient(event_hooks={"request": [hook]})
