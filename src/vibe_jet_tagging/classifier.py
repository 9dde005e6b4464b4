"""``LocalLLMClassifier``: the earlier research classifier's interface, over :class:`JetTagger`.

scikit-learn style: ``fit(X, y)`` keeps the labelled jets as the few-shot pool,
``predict(X)`` returns 1 (quark) / 0 (gluon), ``predict_proba(X)`` the probabilities,
``score(X, y)`` the accuracy, ``apredict(X)`` is the async version. It works in scripts and
inside a running event loop (Jupyter) without nest_asyncio: sync calls run on a background
loop.

A jet the model could not label is never given a guessed label: ``predict`` marks it ``-1``,
``predict_proba`` gives it ``nan``, and ``failures_`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from ._sync import run_sync
from .chain import JetTagger
from .jets import Jet
from .model import DEFAULT_BASE_URL, DEFAULT_MODEL, Effort
from .prompts import DEFAULT_TEMPLATE
from .results import TaggingError, TagResult
from .usage import Price, UsageTotals, usage_totals

__all__ = ["LocalLLMClassifier"]

logger = logging.getLogger(__name__)

FAILED = -1
"""What ``predict`` returns for a jet without a label."""


def _jets(X: Any) -> list[Jet]:
    """Jets from a ``JetDataset``, a list of jets/arrays, or an ``(N, M, 4)`` padded array."""
    if isinstance(X, np.ndarray) and X.ndim == 3:
        return [Jet.from_array(x, index=i) for i, x in enumerate(X)]
    return [
        Jet.coerce(x, index=getattr(x, "index", None) if isinstance(x, Jet) else i)
        for i, x in enumerate(X)
    ]


class LocalLLMClassifier:
    """Quark/gluon classification with a reasoning LLM on a local OpenAI-compatible server.

    Args:
        model_name: the model the server serves.
        reasoning_effort: ``"low"``, ``"medium"`` or ``"high"``.
        base_url, api_key: the server.
        template: prompt template; few-shot templates take their examples from ``fit``.
        max_concurrency: requests in flight at once (``use_async=False`` sends one at a time).
        price: USD per million input and output tokens, for cost estimates (default 0).
        verbose: show each request's settings, token usage (input, output, reasoning),
            cost, a preview of the reasoning, the final answer and running totals.
        tagger_options: anything else :class:`JetTagger` takes (``cache``, ``shots``...).
    """

    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        reasoning_effort: Effort = "medium",
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        *,
        template: str = DEFAULT_TEMPLATE,
        max_concurrency: int = 64,
        price: Price | dict[str, float] | None = None,
        verbose: bool = False,
        **tagger_options: Any,
    ) -> None:
        self.model_name = model_name
        self.reasoning_effort = reasoning_effort
        self.base_url = base_url
        self.api_key = api_key
        self.template = template
        self.max_concurrency = max_concurrency
        self.price = Price(**price) if isinstance(price, dict) else price or Price()
        self.verbose = verbose
        self.tagger_options = tagger_options
        self.classes_ = np.array([0, 1])
        self.tagger_: JetTagger | None = None
        self.results_: list[TagResult] = []
        self.failures_: list[TagResult] = []
        self.totals_ = UsageTotals()

    def __repr__(self) -> str:
        return (
            f"LocalLLMClassifier(model_name={self.model_name!r}, "
            f"reasoning_effort={self.reasoning_effort!r}, base_url={self.base_url!r})"
        )

    # -- scikit-learn interface ---------------------------------------------------------------

    def fit(self, X: Any, y: Sequence[int] | np.ndarray | None = None) -> LocalLLMClassifier:
        """Keep the labelled jets as the few-shot pool (empty ``X``: the bundled sample)."""
        examples = None
        if y is not None and len(y):
            labels = np.asarray(y).astype(int)
            examples = list(zip(_jets(X), labels.tolist(), strict=True))
        self.tagger_ = JetTagger(
            self.model_name,
            base_url=self.base_url,
            effort=self.reasoning_effort,
            api_key=self.api_key,
            template=self.template,
            examples=examples,
            max_concurrency=self.max_concurrency,
            **self.tagger_options,
        )
        return self

    async def atag(self, X: Any, *, use_async: bool = True) -> list[TagResult]:
        """Tag ``X`` and return every jet's :class:`TagResult` (errors included)."""
        if self.tagger_ is None:
            self.fit([], [])
        assert self.tagger_ is not None
        concurrency = self.max_concurrency if use_async else 1
        outcomes = await self.tagger_.abatch(
            _jets(X), {"max_concurrency": concurrency}, return_exceptions=True
        )
        results = []
        for outcome in outcomes:
            if isinstance(outcome, TaggingError):
                outcome = outcome.result
            elif isinstance(outcome, Exception):
                raise outcome
            results.append(outcome)
        self._record(results)
        return results

    async def apredict(self, X: Any, *, use_async: bool = True) -> np.ndarray:
        """1 for quark, 0 for gluon, -1 where the model gave no label."""
        results = await self.atag(X, use_async=use_async)
        return np.array([FAILED if r.value is None else r.value for r in results])

    async def apredict_proba(self, X: Any, *, use_async: bool = True) -> np.ndarray:
        """``(n, 2)`` columns P(gluon), P(quark); ``nan`` where the model gave no label."""
        results = await self.atag(X, use_async=use_async)
        quark = np.array([np.nan if r.score is None else r.score for r in results])
        return np.column_stack([1 - quark, quark])

    def predict(self, X: Any, *, use_async: bool = True, verbose: bool | None = None) -> np.ndarray:
        """1 for quark, 0 for gluon, -1 where the model gave no label (see ``failures_``)."""
        with self._verbosity(verbose):
            return run_sync(self.apredict(X, use_async=use_async))

    def predict_proba(
        self, X: Any, *, use_async: bool = True, verbose: bool | None = None
    ) -> np.ndarray:
        """``(n, 2)`` columns P(gluon), P(quark); ``nan`` where the model gave no label."""
        with self._verbosity(verbose):
            return run_sync(self.apredict_proba(X, use_async=use_async))

    def score(self, X: Any, y: Sequence[int] | np.ndarray, *, verbose: bool | None = None) -> float:
        """Accuracy; a jet without a label counts as wrong."""
        predictions = self.predict(X, verbose=verbose)
        return float(np.mean(predictions == np.asarray(y).astype(int)))

    # -- reporting ----------------------------------------------------------------------------

    @contextmanager
    def _verbosity(self, verbose: bool | None) -> Iterator[None]:
        saved = self.verbose
        self.verbose = saved if verbose is None else verbose
        try:
            yield
        finally:
            self.verbose = saved

    def _record(self, results: list[TagResult]) -> None:
        self.results_ = results
        self.failures_ = [r for r in results if not r.ok]
        prices = {self.model_name: self.price}
        batch = usage_totals(results, prices)
        self.totals_ = UsageTotals(
            jets=self.totals_.jets + batch.jets,
            labelled=self.totals_.labelled + batch.labelled,
            errors=self.totals_.errors + batch.errors,
            cache_hits=self.totals_.cache_hits + batch.cache_hits,
            usage=self.totals_.usage + batch.usage,
            cost=self.totals_.cost + batch.cost,
            latency=self.totals_.latency + batch.latency,
        )
        if self.failures_:
            logger.warning(
                "%d of %d jets got no label (predict gives -1): %s",
                len(self.failures_),
                len(results),
                self.failures_[0].error.message,  # type: ignore[union-attr]
            )
        if self.verbose:
            from ._verbose import show_results

            show_results(self, results)

    @property
    def cost_(self) -> float:
        """USD spent so far at ``price`` (cache hits cost nothing)."""
        return self.totals_.cost
