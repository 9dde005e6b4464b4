"""A tagger's recipe that travels to workers: :class:`TaggerSpec`, built once per process.

A :class:`~.tagging.tagger.JetTagger` holds live HTTP clients, an event loop's state
and an open cache: it must not be pickled to a worker. A :class:`TaggerSpec` holds only what
builds one (the model's name, the server URLs, the settings, as plain data); each worker
process builds its tagger from it once (:meth:`TaggerSpec.tagger`) and reuses it for every
partition or batch it gets, so its HTTP connections and cache stay open.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...config import api_settings
from ...tagging.options import TaggerOptions
from ...tagging.tagger import JetTagger

__all__ = ["TaggerSpec"]

_PLAIN = (str, int, float, bool, type(None))
_OPTIONS = frozenset(TaggerOptions.__annotations__)
_built: dict[TaggerSpec, JetTagger] = {}
_lock = threading.Lock()


def _plain(name: str, value: Any) -> Any:
    """``value`` as hashable plain data (lists become tuples, paths strings), or ValueError."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return tuple(_plain(name, v) for v in value)
    if isinstance(value, _PLAIN):
        return value
    raise ValueError(
        f"TaggerSpec: {name}={type(value).__name__} is not plain data (str, number, bool, "
        "None, a list of them, a path): a live object cannot travel to the workers; pass "
        "its name or settings (examples: a path to a labelled jets file)"
    )


class TaggerSpec:
    """``JetTagger``'s arguments as plain data, to build the same tagger on any worker.

    Args:
        model: the served model's name (not a chat model object).
        **options: any keyword argument of :class:`~.tagging.tagger.JetTagger`
            (``base_url`` one URL or a list, ``effort``, ``template``, ``max_concurrency``...)
            as plain data. ``examples`` is a path to a labelled jets file, read on the worker
            (default: the bundled sample, as for ``JetTagger``). ``cache`` is ``False`` by
            default here: the results files are the record; give a node-local folder (such as
            ``$TMPDIR/vjt-cache``) to keep a cache on each worker, never a shared network one.

    Raises ``ValueError`` for an option ``JetTagger`` does not take, or a value that is not
    plain data. Specs are equal (and hash alike) when their arguments are.

    >>> spec = TaggerSpec("openai/gpt-oss-120b", base_url=["http://n1:8000/v1",
    ...                   "http://n2:8000/v1"], effort="low")
    >>> spec.tagger()  # on a worker: built once per process  # doctest: +SKIP
    """

    def __init__(self, model: str | None = None, **options: Any) -> None:
        # What the driver's configuration says (VJT_*, the config file), fixed here: the
        # workers may run with another environment.
        driver = api_settings()
        model = driver.model if model is None else model
        if "base_url" not in options and "base_url" in driver.model_fields_set:
            options["base_url"] = driver.base_urls
        if "reasoning_effort" not in options and "effort" not in options:
            options["reasoning_effort"] = driver.effort
        if not isinstance(model, str):
            raise ValueError(
                f"TaggerSpec: model must be the served model's name, got {type(model).__name__}"
                " (a chat model object cannot travel to the workers)"
            )
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(
                f"TaggerSpec: JetTagger takes no {', '.join(unknown)}; it takes "
                f"{', '.join(sorted(_OPTIONS))}"
            )
        options.setdefault("cache", False)
        self.model = model
        self.options: Mapping[str, Any] = {k: _plain(k, v) for k, v in sorted(options.items())}

    def _identity(self) -> tuple[Any, ...]:
        return (self.model, tuple(self.options.items()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaggerSpec) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        shown = {k: ("***" if k == "api_key" else v) for k, v in self.options.items()}
        args = "".join(f", {k}={v!r}" for k, v in shown.items())
        return f"TaggerSpec({self.model!r}{args})"

    def build(self) -> JetTagger:
        """A new tagger from this spec."""
        options = dict(self.options)
        if isinstance(options.get("base_url"), tuple):
            options["base_url"] = list(options["base_url"])
        if options.get("examples") is not None:
            from ...jets.dataset import load_jets

            options["examples"] = load_jets(options["examples"])
        return JetTagger(self.model, **options)

    def tagger(self) -> JetTagger:
        """This process's tagger for this spec (built on first use, then shared)."""
        with _lock:
            tagger = _built.get(self)
            if tagger is None:
                tagger = _built[self] = self.build()
            return tagger
