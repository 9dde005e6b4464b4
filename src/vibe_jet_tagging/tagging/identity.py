"""What a tagger's answers belong to: its settings key and the cache key of each jet.

:class:`TaggerIdentity` is the part of :class:`~.tagging.tagger.JetTagger` that names
its answers: the settings key (prompt, model settings, parser and
schema versions, and what the server is) computed once, and ``key_for`` (a jet under those
settings, its few-shot examples included).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel

from ..jets.jet import Jet
from .client import TaggerRequests
from .parsing import PARSER_VERSION, SCHEMA_VERSION
from .templates import Example, JetPrompt

__all__ = ["TaggerIdentity"]


def _model_settings(model: BaseChatModel) -> dict[str, Any]:
    """What about the model shapes its answers (not where it is served)."""
    if hasattr(model, "model_name"):
        fields = (
            "model_name",
            "reasoning_effort",
            "temperature",
            "seed",
            "max_tokens",
            "top_p",
            "model_kwargs",
            "extra_body",
            "stop",
        )
        return {f: getattr(model, f, None) for f in fields}
    return {"llm_string": model._get_llm_string()}


class TaggerIdentity(TaggerRequests):
    """The keys of a :class:`~.tagging.tagger.JetTagger`'s answers."""

    prompt: JetPrompt
    structured_output: bool
    reask: bool
    logprobs: bool
    _settings_key_value: str | None
    _key_lock: threading.Lock

    def _server_identity(self) -> dict[str, Any] | None:
        """What answers: emulated or not, the served weights, the output constraint sent.

        ``None`` for a chat model that is not an OpenAI-compatible client (no server to ask).
        Raises :class:`~vibe_jet_tagging.errors.ServerError` when the server cannot be read.
        """
        info = self.server_info()
        if info is None:
            return None
        card = info.card(self.model_name)
        body = self._options().get("extra_body") or {}
        constraint = next((c for c in ("structured_outputs", "response_format") if c in body), None)
        return {
            "emulated": info.emulated,
            "root": None if card is None else card.root,
            "constraint": constraint,
        }

    def _settings_key(self) -> str:
        settings = {
            "prompt": self.prompt.fingerprint,
            "model": _model_settings(self.model),
            "structured_output": self.structured_output,
            "reask": self.reask,
            "logprobs": self.logprobs,
            "schema": SCHEMA_VERSION,
            "parser": PARSER_VERSION,
        }
        server = self._server_identity()
        if server is not None:
            settings["server"] = server
        blob = json.dumps(settings, sort_keys=True, default=str).encode()
        return hashlib.blake2b(blob, digest_size=12).hexdigest()

    @property
    def settings_key(self) -> str:
        """The part of every cache key that the tagger's settings make, computed once.

        It holds the prompt, the model settings and, for a model server, what the server is
        (:meth:`server_info`, asked once): whether it is the emulated one, the weights it
        serves (``root``) and the output constraint the requests carry. So an answer cached
        from one server is never served for another model or the emulator, whichever API
        wrote it. Raises :class:`~vibe_jet_tagging.errors.ServerError` (nothing kept) while
        the server cannot be read.
        """
        if self._settings_key_value is None:
            with self._key_lock:
                if self._settings_key_value is None:
                    self._settings_key_value = self._settings_key()
        return self._settings_key_value

    def key_for(self, jet: Jet, examples: Sequence[Example] | None = None) -> str:
        """The cache key of ``jet`` under this tagger's settings (its examples included).

        ``examples``: what ``prompt.examples_for(jet)`` gave, when the caller has it already.
        """
        if examples is None:
            examples = self.prompt.examples_for(jet)
        return self._key(self.settings_key, jet, examples)

    @staticmethod
    def _key(settings: str, jet: Jet, examples: Sequence[Example]) -> str:
        shown = ",".join(e.jet.key for e in examples)
        blob = f"{settings}|{jet.key}|{shown}".encode()
        return hashlib.blake2b(blob, digest_size=16).hexdigest()
