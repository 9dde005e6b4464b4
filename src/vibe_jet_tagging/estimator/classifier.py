"""``LocalLLMClassifier``: a scikit-learn classifier over :class:`JetTagger`.

``fit(X, y)`` keeps the labelled jets as the few-shot pool (no request is made),
``predict(X)`` returns 1 (quark) / 0 (gluon), ``predict_proba(X)`` the probabilities in the
column order of ``classes_`` (``[0, 1]``), ``score(X, y)`` the accuracy; ``apredict`` and
``apredict_proba`` are the async versions. Sync calls work in scripts and inside a running
event loop (Jupyter) without nest_asyncio (they run on a background loop).

Each jet is asked once per fit, however many of ``predict``, ``predict_proba`` and ``score``
are called on it: the answers are kept per jet (the last ``max_kept``), and beyond that the
result cache serves them. A jet the model could not label is never given a guessed label:
``predict`` marks it ``-1``, ``predict_proba`` gives it ``nan``, ``score`` counts it as wrong,
each warns with :class:`UnlabelledJetsWarning`, and ``failures_`` says why. For ROC scoring,
:func:`~.scoring.roc_auc_scorer` counts such jets as chosen (wrong by default, left out, or a
fixed probability); ``scoring="roc_auc"`` fails on the nan.
"""

from __future__ import annotations

import warnings
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
from langchain_core.runnables import RunnableConfig
from pydantic import ValidationError

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.metrics import accuracy_score
    from sklearn.utils.validation import check_is_fitted

    from .inputs import few_shot_pool, jets_of
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "LocalLLMClassifier needs scikit-learn: pip install 'vibe-jet-tagging[eval]'"
    ) from exc

from .._sync import run_sync
from ..jets.formats import JetFormat
from ..jets.jet import Jet
from ..store.cache import ResultCache
from ..tagging.model import Effort
from ..tagging.options import TaggerOptions
from ..tagging.results import TaggingError, TagResult
from ..tagging.tagger import JetTagger
from ..tagging.templates import PromptTemplateSpec, SelectorName
from ..tagging.usage import Price, UsageTotals, usage_totals
from .verbose import show_results

__all__ = ["FAILED", "LocalLLMClassifier", "UnlabelledJetsWarning"]

FAILED = -1
"""What ``predict`` returns for a jet without a label."""

_EFFORTS = get_args(Effort)

_TRANSIENT = frozenset({"server", "timeout", "connection", "rate_limit"})
"""Errors that are not the model's answer: not kept, so the next call asks again."""

_TAGGER_OPTIONS = tuple(
    sorted(set(TaggerOptions.__annotations__) - {"effort", "reasoning_effort", "examples"})
)
"""Parameters passed to :class:`JetTagger` under the same name (when not ``None``)."""


class UnlabelledJetsWarning(UserWarning):
    """Some jets got no label: ``predict`` gives -1, ``predict_proba`` nan, ``score`` wrong."""


_PARAMETER_OF = {"max_completion_tokens": "max_tokens", "model": "model_name"}
"""The classifier's name of a chat-model field that has another."""


def _one_line(exc: ValidationError) -> str:
    """A pydantic error as ``name=value: problem; ...`` in the classifier's parameter names."""
    parts = []
    for e in exc.errors():
        name = ".".join(map(str, e["loc"])) or "value"
        parts.append(f"{_PARAMETER_OF.get(name, name)}={e.get('input')!r}: {e['msg']}")
    return "; ".join(parts)


class LocalLLMClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]  # sklearn: untyped
    """Quark/gluon classification with a reasoning LLM on a vLLM (OpenAI-compatible) server.

    A scikit-learn estimator: ``clone``, ``get_params``/``set_params``, ``Pipeline``,
    ``cross_val_score`` and ``GridSearchCV`` (e.g. over ``reasoning_effort`` or ``template``)
    work. ``X`` is jets: a :class:`JetDataset`, a list of :class:`Jet` or ``(n, 4)`` arrays, or
    an ``(n_jets, M, 4)`` zero-padded array (EnergyFlow's layout); labels are 1 = quark,
    0 = gluon, as in the data sets, and ``classes_`` is always ``[0, 1]``.

    Parameters left ``None`` take :class:`JetTagger`'s default. They are stored as given and
    checked by ``fit``, which builds the tagger (``tagger_``); change one with ``set_params``
    and call ``fit`` again for it to apply.

    Args:
        model_name: the model the server serves.
        reasoning_effort: ``"low"``, ``"medium"`` or ``"high"``.
        base_url, api_key: the server.
        template: prompt template (name, path or spec); few-shot templates take their
            examples from ``fit``'s jets (``fit([], [])``: the bundled sample).
        shots, selector, format: override the template's number of examples, example
            selector and jet format.
        temperature, seed, max_tokens, timeout, max_retries: request settings.
        structured_output, reask, logprobs: see :class:`JetTagger`.
        cache: the result cache: a :class:`ResultCache`, a folder, ``True`` (the default
            folder) or ``False``.
        refresh: ignore cached results (and overwrite them).
        max_concurrency: requests in flight at once (``use_async=False`` sends one at a time).
        max_answer_bytes: the largest answer read (default 1 MiB); a larger one is an error.
        price: USD per million input and output tokens, for cost estimates (default 0).
        verbose: show each jet's settings, token usage (input, output, reasoning), cost, a
            preview of the reasoning, the final answer and running totals.
        max_kept: answers kept per fit so that ``predict``, ``predict_proba`` and ``score`` on
            the same jets ask once (the oldest go first; the result cache still has them).

    Fitted attributes: ``classes_``, ``tagger_`` (the :class:`JetTagger`), ``price_``;
    after each prediction ``results_`` (every jet's :class:`TagResult`), ``failures_`` (those
    without a label), ``totals_`` (running :class:`UsageTotals`) and ``cost_``.
    ``n_features_in_`` does not apply: a jet is a variable-length particle list, not a row of
    features, which is also why most of scikit-learn's estimator checks (they feed 2-D
    feature matrices) cannot apply; ``tests/integration/test_sklearn_estimator.py`` lists them.
    """

    def __init__(
        self,
        model_name: str | None = None,
        reasoning_effort: Effort | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        template: str | Path | PromptTemplateSpec | None = None,
        shots: int | None = None,
        selector: SelectorName | None = None,
        format: JetFormat | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        structured_output: bool | None = None,
        reask: bool | None = None,
        logprobs: bool | None = None,
        cache: ResultCache | str | Path | bool = True,
        refresh: bool | None = None,
        max_concurrency: int | None = None,
        max_answer_bytes: int | None = None,
        price: Price | Mapping[str, float] | None = None,
        verbose: bool = False,
        max_kept: int = 10_000,
    ) -> None:
        self.model_name = model_name
        self.reasoning_effort = reasoning_effort
        self.base_url = base_url
        self.api_key = api_key
        self.template = template
        self.shots = shots
        self.selector = selector
        self.format = format
        self.temperature = temperature
        self.seed = seed
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.structured_output = structured_output
        self.reask = reask
        self.logprobs = logprobs
        self.cache = cache
        self.refresh = refresh
        self.max_concurrency = max_concurrency
        self.max_answer_bytes = max_answer_bytes
        self.price = price
        self.verbose = verbose
        self.max_kept = max_kept

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True
        tags.non_deterministic = True
        tags.classifier_tags.multi_class = False
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"X_types": ["3darray"], "non_deterministic": True, "binary_only": True}

    # -- fit -------------------------------------------------------------------------------------

    def fit(self, X: Any, y: Any = None) -> LocalLLMClassifier:
        """Check the parameters, keep the labelled jets as the few-shot pool, build ``tagger_``.

        ``y`` may be left out when ``X`` is a labelled :class:`JetDataset`; ``fit([], [])``
        uses the bundled sample as the pool. No request is made. Answers kept by an earlier
        fit are dropped.
        """
        if self.reasoning_effort is not None and self.reasoning_effort not in _EFFORTS:
            raise ValueError(
                f"reasoning_effort must be one of {', '.join(_EFFORTS)}; "
                f"got {self.reasoning_effort!r}"
            )
        if isinstance(self.max_kept, bool) or not isinstance(self.max_kept, int | np.integer):
            raise ValueError(f"max_kept must be an integer >= 0, got {self.max_kept!r}")
        if self.max_kept < 0:
            raise ValueError(f"max_kept must be an integer >= 0, got {self.max_kept!r}")
        try:
            price = Price.model_validate(self.price or {})
        except ValidationError as exc:
            raise ValueError(f"price: {_one_line(exc)}") from None
        pool = few_shot_pool(X, y)
        self.tagger_ = self._build_tagger(pool)
        self.classes_ = np.array([0, 1])
        self.price_ = price
        self.results_: list[TagResult] = []
        self.failures_: list[TagResult] = []
        self.totals_ = UsageTotals()
        self._pool = pool
        self._kept: OrderedDict[str, TagResult] = OrderedDict()
        return self

    def _build_tagger(self, pool: list[tuple[Jet, int]] | None) -> JetTagger:
        options = {name: getattr(self, name) for name in _TAGGER_OPTIONS}
        options = {name: value for name, value in options.items() if value is not None}
        if self.model_name is not None:
            options["model"] = self.model_name
        if self.reasoning_effort is not None:
            options["effort"] = self.reasoning_effort
        try:
            return JetTagger(examples=pool, **options)
        except ValidationError as exc:
            raise ValueError(f"invalid LocalLLMClassifier parameter: {_one_line(exc)}") from None

    # -- predictions -----------------------------------------------------------------------------

    def _jets(self, X: Any) -> list[Jet]:
        """``X`` as jets (in the caller's thread), once the estimator is fitted."""
        check_is_fitted(self)
        return jets_of(X)

    async def _aresults(self, jets: list[Jet], use_async: bool) -> list[TagResult]:
        """Every jet's result: kept answers, then one tagger batch for the rest."""
        results: list[TagResult | None] = [None] * len(jets)
        todo: list[int] = []
        for i, jet in enumerate(jets):
            kept = self._kept.get(jet.key)
            if kept is None:
                todo.append(i)
            else:
                self._kept.move_to_end(jet.key)
                results[i] = kept.model_copy(update={"cached": True, "index": jet.index})
        if todo:
            config: RunnableConfig = {} if use_async else {"max_concurrency": 1}
            outcomes = await self.tagger_.abatch(
                [jets[i] for i in todo], config, return_exceptions=True
            )
            unexpected: BaseException | None = None
            for i, outcome in zip(todo, outcomes, strict=True):
                if isinstance(outcome, TaggingError):
                    outcome = outcome.result
                elif isinstance(outcome, BaseException):
                    unexpected = unexpected or outcome
                    continue
                results[i] = outcome
                self._keep(jets[i].key, outcome)
            if unexpected is not None:  # what finished is kept for the next call
                raise unexpected
        return results  # type: ignore[return-value]

    def _keep(self, key: str, result: TagResult) -> None:
        if self.max_kept <= 0 or (result.error is not None and result.error.kind in _TRANSIENT):
            return
        self._kept[key] = result
        self._kept.move_to_end(key)
        while len(self._kept) > self.max_kept:
            self._kept.popitem(last=False)

    async def atag(
        self, X: Any, *, use_async: bool = True, verbose: bool | None = None
    ) -> list[TagResult]:
        """Every jet's :class:`TagResult` (errors included), recorded in ``results_``."""
        results = await self._aresults(self._jets(X), use_async)
        self._record(results, verbose)
        return results

    def tag(
        self, X: Any, *, use_async: bool = True, verbose: bool | None = None
    ) -> list[TagResult]:
        """Sync :meth:`atag`."""
        results = run_sync(self._aresults(self._jets(X), use_async))
        self._record(results, verbose)
        return results

    async def apredict(
        self, X: Any, *, use_async: bool = True, verbose: bool | None = None
    ) -> np.ndarray:
        """1 for quark, 0 for gluon, -1 where the model gave no label."""
        return _labels(await self.atag(X, use_async=use_async, verbose=verbose))

    async def apredict_proba(
        self, X: Any, *, use_async: bool = True, verbose: bool | None = None
    ) -> np.ndarray:
        """``(n, 2)``: P(gluon), P(quark) (the order of ``classes_``); nan for no label."""
        return _proba(await self.atag(X, use_async=use_async, verbose=verbose))

    def predict(self, X: Any, *, use_async: bool = True, verbose: bool | None = None) -> np.ndarray:
        """1 for quark, 0 for gluon, -1 where the model gave no label (see ``failures_``)."""
        return _labels(self.tag(X, use_async=use_async, verbose=verbose))

    def predict_proba(
        self, X: Any, *, use_async: bool = True, verbose: bool | None = None
    ) -> np.ndarray:
        """``(n, 2)``: P(gluon), P(quark) (the order of ``classes_``); nan for no label.

        The probability is the one the model stated (a hard label without one gives 0 or 1).
        scikit-learn's ROC tools (``roc_auc_score`` on column 1, the ``"roc_auc"`` scorer,
        ``RocCurveDisplay.from_estimator``) read it; they refuse the nan of unlabelled jets:
        score with :func:`~vibe_jet_tagging.estimator.roc_auc_scorer`, which counts those
        jets as wrong (or as you choose). There is no ``decision_function``: those tools need
        none, and it would only restate this probability.
        """
        return _proba(self.tag(X, use_async=use_async, verbose=verbose))

    def score(
        self, X: Any, y: Any, sample_weight: Any = None, *, verbose: bool | None = None
    ) -> float:
        """Accuracy. A jet without a label counts as wrong (with an ``UnlabelledJetsWarning``
        giving the count); so does it in ``cross_val_score`` and ``GridSearchCV``, which score
        with this method unless given another ``scoring``."""
        predictions = self.predict(X, verbose=verbose)
        return float(
            accuracy_score(np.asarray(y).astype(int), predictions, sample_weight=sample_weight)
        )

    # -- reporting -------------------------------------------------------------------------------

    def _record(self, results: list[TagResult], verbose: bool | None) -> None:
        self.results_ = results
        self.failures_ = [r for r in results if not r.ok]
        batch = usage_totals(results, {self.tagger_.model_name: self.price_})
        t = self.totals_
        self.totals_ = UsageTotals(
            jets=t.jets + batch.jets,
            labelled=t.labelled + batch.labelled,
            errors=t.errors + batch.errors,
            cache_hits=t.cache_hits + batch.cache_hits,
            usage=t.usage + batch.usage,
            cost=t.cost + batch.cost,
            latency=t.latency + batch.latency,
        )
        if self.failures_:
            kinds = Counter(r.error.kind for r in self.failures_ if r.error is not None)
            first = self.failures_[0]
            warnings.warn(
                f"{len(self.failures_)} of {len(results)} jets got no label "
                f"({', '.join(f'{n} {kind}' for kind, n in kinds.items())}; first: jet "
                f"{first.index}: {first.error.message if first.error else '?'}): predict gives "
                "-1, predict_proba nan, score counts them as wrong; see failures_; for ROC "
                "scoring use scoring=roc_auc_scorer() (counts them as wrong), not 'roc_auc'",
                UnlabelledJetsWarning,
                stacklevel=4,
            )
        if self.verbose if verbose is None else verbose:
            show_results(
                results, price=self.price_, base_url=self.tagger_.base_url, totals=self.totals_
            )

    @property
    def cost_(self) -> float:
        """USD spent so far at ``price`` (cache hits and kept answers cost nothing)."""
        check_is_fitted(self)
        return self.totals_.cost

    # -- pickling --------------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("tagger_", None)  # holds HTTP clients and locks; rebuilt from the pool
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_pool" in state:
            self.tagger_ = self._build_tagger(self._pool)


def _labels(results: Sequence[TagResult]) -> np.ndarray:
    return np.array([FAILED if r.value is None else r.value for r in results], dtype=int)


def _proba(results: Sequence[TagResult]) -> np.ndarray:
    quark = np.array([np.nan if r.score is None else r.score for r in results], dtype=float)
    return np.column_stack([1 - quark, quark])
