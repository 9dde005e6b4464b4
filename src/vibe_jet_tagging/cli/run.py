"""Steps the tagging commands share: the jets, the server, the tagger and the streamed run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from .app import CLIError, console
from .cache import cache_root, results_dir
from .checks import url_problem
from .lazy import lazy

np = lazy("numpy")  # numpy is imported when a command first uses it

_EMULATED = "answers from a physics heuristic, not a language model"


def say(message: str, **options: Any) -> None:
    """One message line on stderr, unwrapped (a log or a test reads it whole)."""
    console.print(message, soft_wrap=True, highlight=False, **options)


# -- shared steps -------------------------------------------------------------------------------


def open_jets(spec: str) -> Any:
    """The data set named on the command line ('sample' or a path, kept absolute).

    A path that does not exist is answered before numpy and the readers are imported.
    """
    path = Path(spec)
    if spec != "sample" and not path.exists():
        raise CLIError(f"{spec}: no such file or folder ('sample' is the bundled jets)")
    from ..jets.dataset import load_jets, load_sample

    return load_sample() if spec == "sample" else load_jets(path.resolve())


def select(
    dataset: Any, limit: int | None, balanced: bool, seed: int | None, shard: str | None = None
) -> Any:
    """The first ``limit`` jets, or a seeded balanced subset of ``limit``; then ``--shard``."""
    if limit is not None:
        if limit < 1:
            raise CLIError(f"--limit must be positive, got {limit}")
        if balanced:
            dataset = dataset.balanced(limit, seed=seed or 0)
        else:
            dataset = dataset.head(min(limit, len(dataset)))
    if shard is not None:
        k, n = parse_shard(shard)
        dataset = dataset.shard(k, n)
    return dataset


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as ``(K, N)``, with ``0 <= K < N``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise CLIError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
    if n < 1 or not 0 <= k < n:
        raise CLIError(f"--shard {text}: need 0 <= K < N (K counts from 0, as Slurm array ids)")
    return k, n


def example_pool() -> Any:
    """Few-shot examples: the bundled sample's labelled jets.

    The whole sample, even when it is also what is tagged: a jet is never its own example
    (the selectors exclude it by key), and a pool that does not depend on ``--limit`` or
    ``--seed`` keeps the cache keys of jets tagged before.
    """
    from ..jets.dataset import load_sample

    return load_sample()


def check_template(name: str) -> None:
    """Fail early (before any server starts) on a template that does not exist."""
    from ..tagging.templates import load_template

    load_template(name)


@dataclass
class Backend:
    """The server(s) a command talks to, and whether it is the emulated one."""

    urls: list[str]
    emulated: bool

    @property
    def url(self) -> str:
        """The (first) server's URL (for clients: it may hold a password)."""
        return self.urls[0]

    @property
    def shown(self) -> str:
        """The (first) server's URL as it may be shown (no password)."""
        from ..servers.url import redact

        return redact(self.urls[0]) or ""

    @property
    def kind(self) -> str:
        """``"emulated"`` or ``"server"`` (what rows and reports record)."""
        return "emulated" if self.emulated else "server"

    def announce(self) -> None:
        """Say it on stderr when the answers will come from the emulated server."""
        if self.emulated:
            say(f"[dim]emulated vLLM server on {escape(self.shown)} ({_EMULATED})[/]")


@contextlib.contextmanager
def server(
    emulate: bool, settings: Any, *, models: list[str] | None = None, **emulator_options: Any
) -> Iterator[Backend]:
    """The server to use: an emulated one started for the command, or the settings' one.

    A real server is checked first (reachable, serves the model); one that turns out to be
    the emulated server is treated as such.
    """
    if not emulate:
        urls, model = settings.base_urls, settings.model
        for url in urls:  # a typo is to fix, not a server to start: said before any request
            problem = url_problem(url)
            if problem:
                raise CLIError(
                    f"base URL {url!r}: {problem}; fix --base-url (or VJT_BASE_URL, or "
                    "base_url in the config file), e.g. http://localhost:8000/v1"
                )
        from ..errors import ModelNotServedError, ServerError
        from ..servers.info import fetch_pool_info

        try:  # each server once; several must serve the same model
            info = fetch_pool_info(urls, settings.api_key.get_secret_value(), model)
        except ModelNotServedError as exc:
            raise CLIError(
                f"the server at {exc.url} does not serve the model {model!r}; it serves "
                f"{', '.join(map(repr, exc.served)) or 'nothing'}: pass one with --model "
                "(VJT_MODEL)"
            ) from None
        except ServerError as exc:
            raise CLIError(
                f"{str(exc).rstrip('.')}. Start vLLM there (`vllm serve {model}`) or point "
                "--base-url (VJT_BASE_URL) at a running server, or pass --emulate to use the "
                "built-in emulated server."
            ) from None
        yield Backend(urls, info.emulated)
        return
    from ..emulator import LATENCY_PRESETS, EmulatedServer

    # The "demo" latency: an answer takes longer at a higher effort, as on vLLM (not instant).
    options = {**LATENCY_PRESETS["demo"], **emulator_options}
    with EmulatedServer(models=models or [settings.model], **options) as emulated:
        yield Backend([emulated.base_url], True)


def make_tagger(
    settings: Any, backend: Backend, examples: Any, *, cache: bool, refresh: bool
) -> Any:
    """A :class:`JetTagger` from the command's settings.

    The emulated server's answers go to a cache of their own (the cache key says what the
    server is too, so they could never be served as a model's anyway). A cache folder others
    can write to stops the command (one line; ``--shared-cache`` allows it); one that cannot
    be opened or written is set aside with one warning and the run goes on without it.
    """
    from ..store.cache import ResultCache
    from ..tagging.options import options_from_settings
    from ..tagging.tagger import JetTagger

    store = None
    if cache:
        folder = results_dir(cache_root(settings.cache_dir), emulated=backend.emulated)
        store = ResultCache(folder, shared=settings.shared_cache)
    options = options_from_settings(settings)
    options["base_url"] = backend.urls
    options["examples"] = examples
    options["cache"] = store
    options["refresh"] = refresh
    return JetTagger(settings.model, **options)


def settings_from(**flags: Any) -> Any:
    from ..config import load_settings

    return load_settings(**flags)
