"""What a tagger is made of, declared once: :class:`TaggerOptions`, and how they resolve.

``JetTagger(model, **options)`` takes these keyword arguments; :func:`resolve` completes
them from the configuration (``VJT_*`` variables, the config file, the defaults, as ``vjt``
reads them, see :mod:`vibe_jet_tagging.config`) into :class:`Resolved`: the chat model, the
prompt, the result cache and the switches the tagger's parts are built from. A chat model
the tagger makes itself is a :class:`DeferredChatVLLM`: checked here, built on first use
(``ChatVLLM`` is a ``ChatOpenAI``, whose stack takes ~1 s of CPU to import). The command line
passes its :class:`~vibe_jet_tagging.config.Settings` through :func:`options_from_settings`,
so no list of settings is written twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from typing_extensions import TypedDict

from .._imports import Deferred
from ..config import Effort, SelectorName, Settings, api_settings
from ..errors import ConfigError
from ..jets.formats import JetFormat
from ..servers.url import check_base_urls
from ..store.cache import ResultCache
from .prompt import JetPromptTemplate
from .templates import PromptTemplateSpec

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from .model import ChatVLLM

__all__ = ["DeferredChatVLLM", "Resolved", "TaggerOptions", "options_from_settings", "resolve"]


class TaggerOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~vibe_jet_tagging.tagging.tagger.JetTagger`.

    Each left out (or ``None``) comes from the configuration, then the default.
    """

    base_url: str | Sequence[str] | None
    """The server's OpenAI-compatible URL (default ``http://localhost:8000/v1``), or a list
    of servers of the same model (see :class:`~vibe_jet_tagging.servers.pool.EndpointPool`)."""
    reasoning_effort: Effort | None
    """``"low"``, ``"medium"`` (default) or ``"high"``."""
    effort: Effort | None
    """Alias of ``reasoning_effort`` kept for older code."""
    temperature: float | None
    seed: int | None
    """Sent to the server; also seeds the balanced draw of few-shot examples."""
    max_tokens: int | None
    timeout: float | None
    max_retries: int | None
    api_key: str | None
    max_answer_bytes: int | None
    """The largest answer read (default 1 MiB): a larger one is an ``oversized`` error."""
    template: str | Path | PromptTemplateSpec | JetPromptTemplate | None
    """A template name from ``prompts/`` (default ``few_shot``), a path, a spec, or a
    :class:`JetPromptTemplate`."""
    examples: Any
    """Labelled jets for few-shot examples (default: the bundled sample)."""
    format: JetFormat | None
    shots: int | None
    selector: SelectorName | None
    structured_output: bool | None
    """Constrain the answer to the :class:`JetLabel` JSON (default on)."""
    reask: bool | None
    """Ask once more when an answer gives no label (default on)."""
    logprobs: bool | None
    """Request token logprobs and report a logprob-based quark probability (default off)."""
    cache: ResultCache | str | Path | bool | None
    """A :class:`ResultCache`, a folder, ``True`` (default: ``<cache_dir>/results``) or
    ``False``/``None`` for none."""
    refresh: bool | None
    """Ignore cached results (and overwrite them)."""
    max_concurrency: int | None
    """Requests in flight at once in ``abatch`` when the call's config sets none (64)."""


_OPTIONS = frozenset(TaggerOptions.__annotations__)
_REQUEST = ("base_url", "temperature", "max_tokens", "timeout", "max_retries", "api_key")
"""Options of the HTTP requests: they belong to a chat model passed in, not the tagger."""
_PROMPT = ("examples", "format", "shots", "selector")
_ARGUMENT_NAMES = {"effort": "reasoning_effort", "concurrency": "max_concurrency"}
"""Settings given to ``JetTagger`` under another name (for messages and the CLI)."""


class DeferredChatVLLM(Deferred["ChatVLLM"]):
    """The ``ChatVLLM`` that ``settings`` configure, built on first use.

    What building it could refuse is checked now, with the same one-line
    :class:`~vibe_jet_tagging.errors.ConfigError` (the settings were validated when read; the
    server URLs as the model's pool of servers takes them); its name, effort and URLs are
    known without building it.
    """

    def __init__(self, settings: Settings) -> None:
        try:
            checked = check_base_urls(settings.base_urls)
        except ValueError as exc:
            raise ConfigError(f"ChatVLLM: {exc}") from None
        if not settings.api_key.get_secret_value():
            raise ConfigError(
                "ChatVLLM: api_key is empty: give the server's key, or leave it out "
                "(EMPTY, what vLLM takes when started without --api-key)"
            )
        super().__init__(self._build)
        self.settings = settings
        self.model_name = settings.model
        self.reasoning_effort: str | None = settings.effort
        self.base_urls = [url for url, _ in checked]

    def _build(self) -> ChatVLLM:
        from .model import ChatVLLM

        return ChatVLLM.from_settings(self.settings)


@dataclass(frozen=True)
class Resolved:
    """Everything a tagger is built from, completed from the configuration."""

    model: BaseChatModel | DeferredChatVLLM
    prompt_template: JetPromptTemplate
    cache: ResultCache | None
    structured_output: bool
    reask: bool
    logprobs: bool
    refresh: bool
    max_concurrency: int
    max_answer_bytes: int


def _check_names(options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise TypeError(
            f"JetTagger got unexpected keyword argument(s) {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(sorted(_OPTIONS))}"
        )


def resolve(model: str | BaseChatModel | None, options: TaggerOptions) -> Resolved:
    """``model`` and ``options`` completed from the configuration; one-line errors.

    Raises ``TypeError`` for an unknown option and
    :class:`~vibe_jet_tagging.errors.ConfigError` (a ``ValueError``) for an invalid value or
    options that contradict each other (request options beside a chat model passed in,
    prompt options beside a :class:`JetPromptTemplate` passed in).
    """
    given: dict[str, Any] = dict(options)
    _check_names(given)
    effort, alias = given.get("reasoning_effort"), given.get("effort")
    if alias is not None and effort is not None and alias != effort:
        raise ConfigError(
            f"reasoning_effort={effort!r} and effort={alias!r}: effort is an alias of "
            "reasoning_effort; give one"
        )
    effort = effort or alias
    chat_model = None
    if model is not None and not isinstance(model, str):
        from langchain_core.language_models import BaseChatModel  # loaded: a model was given

        chat_model = model if isinstance(model, BaseChatModel) else None
    if chat_model is not None:
        clash = [name for name in _REQUEST if given.get(name) is not None]
        clash += ["reasoning_effort"] if effort is not None else []
        if clash:
            raise ConfigError(f"{', '.join(clash)}: set these on the chat model passed as `model`")
    template = given.get("template")
    if isinstance(template, JetPromptTemplate):
        clash = [name for name in _PROMPT if given.get(name) is not None]
        if clash:
            raise ConfigError(
                f"{', '.join(clash)}: set these on the JetPromptTemplate passed as template"
            )
    settings = api_settings(
        _ARGUMENT_NAMES,
        model=None if chat_model is not None else model,
        effort=effort,
        template=template if isinstance(template, str) else None,
        concurrency=given.get("max_concurrency"),
        **{
            name: given.get(name)
            for name in (*_REQUEST, "seed", "shots", "selector", "structured_output")
        },
        max_answer_bytes=given.get("max_answer_bytes"),
    )
    resolved_model = DeferredChatVLLM(settings) if chat_model is None else chat_model
    if isinstance(template, JetPromptTemplate):
        prompt_template = template
    else:
        prompt_template = JetPromptTemplate(
            settings.template if template is None or isinstance(template, str) else template,
            examples=given.get("examples"),
            format=given.get("format"),
            shots=settings.shots,
            selector=settings.selector,
            seed=settings.seed or 0,
        )
    return Resolved(
        model=resolved_model,
        prompt_template=prompt_template,
        cache=_cache(given.get("cache", True), settings),
        structured_output=settings.structured_output,
        reask=given.get("reask") is not False,
        logprobs=bool(given.get("logprobs")),
        refresh=bool(given.get("refresh")),
        max_concurrency=settings.concurrency,
        max_answer_bytes=settings.max_answer_bytes,
    )


def _cache(cache: Any, settings: Settings) -> ResultCache | None:
    if cache is True:
        folder = settings.cache_dir
        return ResultCache(folder / "results" if folder else None, shared=settings.shared_cache)
    if isinstance(cache, str | Path):
        return ResultCache(cache, shared=settings.shared_cache)
    return cache if isinstance(cache, ResultCache) else None


def options_from_settings(settings: Settings) -> TaggerOptions:
    """The :class:`TaggerOptions` ``settings`` give (what ``vjt`` read from flags, the
    environment and the config file), under the tagger's argument names."""
    values = {
        _ARGUMENT_NAMES.get(name, name): getattr(settings, name)
        for name in Settings.model_fields
        if _ARGUMENT_NAMES.get(name, name) in _OPTIONS
    }
    values["base_url"] = settings.base_urls
    values["api_key"] = settings.api_key.get_secret_value()
    return cast(TaggerOptions, values)
