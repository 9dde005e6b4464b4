"""LangChain's standard unit tests for chat models (``langchain-tests``) on ``ChatVLLM``.

As LangChain's partner packages run them (langchain-openai's ``TestOpenAIStandard``): no
server is contacted. ``ChatVLLM`` reads its settings like ``vjt`` does, so the
init-from-environment case uses the package's variables. The snapshot of the serialized model
lives in ``__snapshots__/`` (refresh with ``pytest --snapshot-update`` after a deliberate
change). The integration suite runs against the emulated server in
``tests/integration/test_langchain_standard.py``.
"""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.load import dumpd, load
from langchain_tests.unit_tests import ChatModelUnitTests
from syrupy.assertion import SnapshotAssertion

from vibe_jet_tagging.tagging.model import ChatVLLM


class TestChatVLLMStandard(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[ChatVLLM]:
        return ChatVLLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": "openai/gpt-oss-120b", "base_url": "http://127.0.0.1:8000/v1"}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return (
            {
                "VJT_BASE_URL": "http://gpu-node:8000/v1",
                "VJT_MODEL": "openai/gpt-oss-20b",
                "VJT_EFFORT": "high",
                "VJT_TIMEOUT": "120",
                "OPENAI_API_KEY": "sk-from-env",
            },
            {},
            {
                "openai_api_base": "http://gpu-node:8000/v1",
                "model_name": "openai/gpt-oss-20b",
                "reasoning_effort": "high",
                "request_timeout": 120.0,
                "openai_api_key": "sk-from-env",
            },
        )

    @property
    def supports_json_mode(self) -> bool:
        return True

    @pytest.mark.xfail(
        reason="langchain-core's load(allowed_objects='all') revives only the classes on its "
        "own allowlist (langchain_core.load.mapping: its partner packages), so ChatVLLM, a "
        "class of another package, fails the round trip there; test_serdes_when_named shows "
        "it serializes and revives when named",
        strict=True,
    )
    def test_serdes(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        super().test_serdes(model, snapshot)

    def test_serdes_when_named(self, model: BaseChatModel, snapshot: SnapshotAssertion) -> None:
        """The standard round trip, reviving with ``allowed_objects=[ChatVLLM]``."""
        env_params, _, _ = self.init_from_env_params
        with mock.patch.dict(os.environ, env_params):
            serialized = dumpd(model)
            assert serialized == snapshot(name="serialized")
            revived = load(
                serialized,
                valid_namespaces=["vibe_jet_tagging"],
                allowed_objects=[ChatVLLM],
                secrets_from_env=True,
            )
        assert isinstance(revived, ChatVLLM)
        assert revived.asdict() == model.asdict()
