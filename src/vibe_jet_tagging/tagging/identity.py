"""What a tagger's answers belong to: its settings key and the cache key of each jet.

:class:`KeyPolicy` names answers. The settings key holds the prompt, the model settings, the
parser and schema versions, and what the server is (emulated or not, its weights, the output
constraint sent), computed once; a jet's cache key holds the settings key, the jet and the
few-shot examples it is shown. So an answer cached from one server is never served for
another model or the emulator, whichever API wrote it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._compat.langchain_core import llm_string
from ..jets.jet import Jet
from .client import RequestClient
from .examples import Example
from .prompt import JetPrompt

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["KeyPolicy"]


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
    return {"llm_string": llm_string(model)}


class KeyPolicy:
    """The settings key of a tagger and the cache key of each jet under it.

    Args:
        prompt: the prompt the jets are formatted with.
        client: the requests (what the server is, the constraint the calls carry).
        structured_output, reask, logprobs: the tagger's switches (each changes answers).
    """

    def __init__(
        self,
        prompt: JetPrompt,
        client: RequestClient,
        *,
        structured_output: bool,
        reask: bool,
        logprobs: bool,
    ) -> None:
        self.prompt = prompt
        self.client = client
        self._switches = {
            "structured_output": structured_output,
            "reask": reask,
            "logprobs": logprobs,
        }
        self._settings_key: str | None = None
        self._lock = threading.Lock()

    @property
    def settings_key(self) -> str:
        """The part of every cache key that the tagger's settings make, computed once.

        Raises :class:`~vibe_jet_tagging.errors.ServerError` (nothing kept) while the server
        cannot be read.
        """
        if self._settings_key is None:
            with self._lock:
                if self._settings_key is None:
                    self._settings_key = self._compute()
        return self._settings_key

    @property
    def known(self) -> str | None:
        """The settings key if computed already, else ``None`` (never asks the server)."""
        return self._settings_key

    def _compute(self) -> str:
        from .parsing import PARSER_VERSION, SCHEMA_VERSION  # the parser's stack: when used

        settings: dict[str, Any] = {
            "prompt": self.prompt.fingerprint,
            "model": _model_settings(self.client.model),
            **self._switches,
            "schema": SCHEMA_VERSION,
            "parser": PARSER_VERSION,
        }
        server = self.client.key_identity()
        if server is not None:
            settings["server"] = server
        blob = json.dumps(settings, sort_keys=True, default=str).encode()
        return hashlib.blake2b(blob, digest_size=12).hexdigest()

    def key_for(self, jet: Jet, examples: Sequence[Example] | None = None) -> str:
        """The cache key of ``jet`` under these settings (its few-shot examples included).

        ``examples``: what ``prompt.examples_for(jet)`` gave, when the caller has it already.
        """
        if examples is None:
            examples = self.prompt.examples_for(jet)
        return self.key(self.settings_key, jet, examples)

    @staticmethod
    def key(settings: str, jet: Jet, examples: Sequence[Example]) -> str:
        """The cache key of ``jet`` shown ``examples`` under the settings key ``settings``."""
        shown = ",".join(e.jet.key for e in examples)
        blob = f"{settings}|{jet.key}|{shown}".encode()
        return hashlib.blake2b(blob, digest_size=16).hexdigest()
