"""How the package's names are imported: on first use, and from the paths of earlier releases.

:func:`lazy_exports` gives a package the module ``__getattr__`` that imports a public name
the first time it is read, so ``import vibe_jet_tagging`` (and each subpackage) stays light.

:class:`Deferred` holds an object built on first use (a part whose library is heavy to
import, such as the chat model of a tagger), so building what holds it stays light too.

The module paths of earlier releases are kept working for one release with a warning:

``vibe_jet_tagging.chain``, ``.cache``, ``.model``... moved into the packages that name the
architecture (``tagging``, ``store``, ``servers``, ``jets``, ``scale``, ``evaluation``,
``estimator``). Importing an old path gives a stand-in module that reads every name from the
new place and warns once (``DeprecationWarning``); the public names of
:mod:`vibe_jet_tagging` itself never moved. No file is left at the old place.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["MOVED", "Deferred", "built", "install", "lazy_exports"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_PACKAGE = __name__.rpartition(".")[0]


def lazy_exports(
    package: str, exports: dict[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``exports`` maps each public name to the
    submodule that holds it, imported when the name is first read (then kept in
    ``namespace``, the package's globals)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    return __getattr__


class Deferred(Generic[T_co]):
    """An object built by ``build()`` the first time :meth:`get` is called (once, whatever
    the threads), then kept. Whatever can be checked without building it is checked by
    whoever makes the ``Deferred``, so that errors still surface there."""

    def __init__(self, build: Callable[[], T_co]) -> None:
        self._build: Callable[[], T_co] | None = build
        self._value: T_co | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether :meth:`get` has built the object."""
        return self._build is None

    def get(self) -> T_co:
        """The object, built now if not yet."""
        if self._build is not None:
            with self._lock:
                if self._build is not None:
                    self._value = self._build()
                    self._build = None
        return self._value  # type: ignore[return-value]  # built above


def built(value: T | Deferred[T]) -> T:
    """``value`` itself, or the object a :class:`Deferred` builds (now, if not yet)."""
    return value.get() if isinstance(value, Deferred) else value


MOVED: dict[str, str | tuple[str, ...]] = {
    "data": "jets.dataset",
    "sources": "jets.sources",
    "npz": "jets.npz",
    "formats": "jets.formats",
    "generate": "jets.generate",
    "server_info": "servers.info",
    "endpoints": "servers.pool",
    "chain": "tagging.tagger",
    "prompts": ("tagging.templates", "tagging.prompt", "tagging.examples"),
    "prompt_template": "tagging.prompt",
    "model": "tagging.model",
    "output_parser": "tagging.parser",
    "parsing": "tagging.parsing",
    "parsing.answer": "tagging.parsing.answer",
    "parsing.errors": "tagging.parsing.errors",
    "parsing.prose": "tagging.parsing.prose",
    "parsing.schema": "tagging.parsing.schema",
    "results": "tagging.results",
    "usage": "tagging.usage",
    "cache": ("store.cache", "store.folder", "store.llm_cache"),
    "filesystems": "store.filesystems",
    "merging": "store.merging",
    "batchfiles": "scale.batchfiles",
    "batchread": "scale.batchread",
    "engines": "scale.engines",
    "engines.dask": "scale.engines.dask",
    "engines.ray": "scale.engines.ray",
    "engines.spec": "scale.engines.spec",
    "engines.partition": "scale.engines.partition",
    "metrics": "evaluation.metrics",
    "baselines": "evaluation.baselines",
    "report": "evaluation.report",
    "report.rows": "store.rows",
    "report.build": "evaluation.report.build",
    "report.evaluation": "evaluation.report.evaluation",
    "report.html": "evaluation.report.html",
    "report.plots": "evaluation.report.plots",
    "report.table": "evaluation.report.table",
    "classifier": "estimator.classifier",
}
"""Old module (relative to the package) -> where its names live now (first that has one)."""


class _StandIn(types.ModuleType):
    """An old module path: every name is read from the module that holds it now."""

    def __init__(self, name: str, targets: tuple[str, ...]) -> None:
        super().__init__(name, f"Moved to {', '.join(targets)} (works until the next release).")
        self.__targets = targets

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        for target in self.__targets:
            module = importlib.import_module(target)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted({n for t in self.__targets for n in dir(importlib.import_module(t))})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the old paths (after the regular finders, which no longer find them)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix = _PACKAGE + "."
        if not fullname.startswith(prefix) or fullname[len(prefix) :] not in MOVED:
            return None
        old = fullname[len(prefix) :]
        is_package = any(other.startswith(old + ".") for other in MOVED)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        old = spec.name[len(_PACKAGE) + 1 :]
        moved = MOVED[old]
        targets = tuple(f"{_PACKAGE}.{t}" for t in ((moved,) if isinstance(moved, str) else moved))
        warnings.warn(
            f"{spec.name} moved to {targets[0]}; the old path works until the next release "
            f"(public names: `from {_PACKAGE} import ...`)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _StandIn(spec.name, targets)

    def exec_module(self, module: types.ModuleType) -> None:
        if module.__spec__ is not None and module.__spec__.submodule_search_locations is not None:
            module.__path__ = []  # a package: its old submodules are found by this finder


_FINDER = _Finder()


def install() -> None:
    """Let the old paths import (once per process)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.append(_FINDER)
