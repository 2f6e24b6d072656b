"""Shadow reranking: run a candidate reranker on live traffic without serving its order.

Before a team turns a cross-encoder on, it wants to know what the reranker would cost and
how often it would change the answer, on real queries. :class:`ShadowReranker` sits where
the reranker would go::

    shadow = otel_rerank.ShadowReranker(cross_encoder, sample_rate=0.1, max_queue=64)
    served = shadow(query, candidates)   # the same list object, returned at once

In ``shadow`` mode the request path pays for a queue insert only: a sampled share of calls
is handed to one daemon worker thread, which runs ``predict`` and records one rerank span
(``rag.rerank.shadow=true``) linked to the request's span, with the scores' top-1 change
and Kendall tau. A full queue drops the work and counts it in ``rag.shadow.dropped``; it
never blocks. ``OTEL_RERANK_MODE`` is read on every call (one dict lookup), so operators
move between ``off`` (original order, no reranking), ``shadow`` (the default) and
``serve`` (rerank synchronously and return the reranked order, as a normal rerank span) by
changing the process environment — e.g. from an admin endpoint or a config reload — with
no deploy. The inner ``predict`` runs with instrumentation suppressed, so a run is one span,
never two.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import queue
import random
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import Link

from otel_rerank import _span, _telemetry, semconv
from otel_rerank._feedback import candidate_ids, order_attributes
from otel_rerank._ranking import reranked_order, summarize_scores  # reranked_order: re-export
from otel_rerank._safe import guard, logger, report_internal_error
from otel_rerank._values import float_list, model_name_of

if TYPE_CHECKING:
    from otel_rerank.budget import RerankBudget

MODE_ENV: Final = "OTEL_RERANK_MODE"
MODES: Final = ("off", "shadow", "serve", "interleave")
DEFAULT_MODE: Final = "shadow"

_T = TypeVar("_T")
_STOP: Final = object()


def current_mode(explicit: str | None = None) -> str:
    """The mode in force: ``explicit`` if given, else ``$OTEL_RERANK_MODE``, else shadow.

    An unknown value falls back to ``shadow`` (logged once per value): a typo in an
    operator's setting must not start serving an unvetted order.
    """
    raw = explicit if explicit is not None else os.environ.get(MODE_ENV)
    if raw is None:
        return DEFAULT_MODE
    mode = raw.strip().lower()
    if mode in MODES:
        return mode
    if mode:
        _warn_unknown_mode(raw)
    return DEFAULT_MODE


@functools.lru_cache(maxsize=16)
def _warn_unknown_mode(raw: str) -> None:
    logger.warning("%s=%r is not one of %s; using %s", MODE_ENV, raw, MODES, DEFAULT_MODE)


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """What one shadow run found (handed to ``on_result``, if given).

    Attributes:
        query: the query.
        scores: one score per candidate, in the order the candidates were given.
        order: candidate indices, best first (stable: ties keep retrieval's order).
        latency_s: seconds ``predict`` took.
        queue_wait_s: seconds the work waited in the queue before it started.
        top1_changed: the reranker would have put another candidate first.
        kendall_tau: tau-b between retrieval's order and the reranker's.
    """

    query: str
    scores: list[float]
    order: list[int]
    latency_s: float
    queue_wait_s: float
    top1_changed: bool
    kendall_tau: float | None


@dataclass(slots=True)
class _Job:
    query: str
    candidates: list[Any]
    link: Link | None
    enqueued: float
    ids: Any = None


def _default_text(candidate: Any) -> str:
    if isinstance(candidate, str):
        return candidate
    if isinstance(candidate, dict):
        for key in ("text", "content", "page_content", "document"):
            value = candidate.get(key)
            if isinstance(value, str):
                return value
    for attribute in ("text", "page_content", "content"):
        value = getattr(candidate, attribute, None)
        if isinstance(value, str):
            return value
    return str(candidate)


_live: weakref.WeakSet[ShadowReranker[Any]] = weakref.WeakSet()


#: Seconds all shadow rerankers together may delay a normal interpreter exit.
EXIT_BOUND_S: Final = 1.0


def close_all(timeout: float = EXIT_BOUND_S) -> bool:
    """Close every live shadow reranker within ``timeout`` seconds in all (not each).

    Runs at interpreter exit (before the span pipeline that :func:`otel_rerank.configure`
    installed shuts down, so that finished shadow spans are still exported). Queued work
    is abandoned; only the batch each worker is running is waited for, so that no worker is
    inside native model code when the interpreter tears down. Returns True when every
    worker stopped in time.
    """
    deadline = time.monotonic() + max(timeout, 0.0)
    rerankers = list(_live)
    for reranker in rerankers:  # stop all first, so that none starts new work meanwhile
        reranker._stop_taking_work()
    finished = True
    for reranker in rerankers:
        # No new shadow work at exit: only the batch in progress is waited for.
        finished &= reranker.close(timeout=max(deadline - time.monotonic(), 0.0), drain=False)
    return finished


atexit.register(close_all)


def _reset_after_fork() -> None:
    # The parent's worker threads do not exist in a forked child, and their queues' locks
    # may have been held at the fork: each reranker starts afresh (its queued work stays
    # the parent's to do).
    for reranker in list(_live):
        reranker._reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _work(owner: weakref.ref[ShadowReranker[Any]], jobs: queue.Queue[Any]) -> None:
    """The worker thread's loop. It holds its reranker only while running a job, so a
    reranker dropped without ``close()`` is collected, and with it the model; its finalizer
    wakes this loop, which then ends."""
    while True:
        job = jobs.get()
        if job is _STOP:
            return
        reranker = owner()
        if reranker is None:
            return
        try:
            if not reranker._abandon:
                reranker._shadow_run(job)
        except Exception as error:
            if error is reranker._user_error:
                # The candidate model or on_result failed (recorded on the span): the
                # user's to see there, not a bug of ours; the worker goes on.
                logger.debug("otel-rerank: shadow rerank failed", exc_info=True)
            else:
                report_internal_error("shadow worker")  # ours: re-raised under our tests
        finally:
            reranker._user_error = None
        # close() could not queue its stop marker into a full queue: stop once it is empty.
        done = reranker._closed and jobs.empty()
        del reranker, job
        if done:
            return


def _wake_worker(jobs: queue.Queue[Any]) -> None:
    with contextlib.suppress(queue.Full):  # full: the worker finds its reranker gone anyway
        jobs.put_nowait(_STOP)


class ShadowReranker(Generic[_T]):
    """Shadow-run (or serve) a cross-encoder on live queries, switched by ``OTEL_RERANK_MODE``.

    Args:
        cross_encoder: anything with CrossEncoder's ``predict(pairs, batch_size=...)``.
        sample_rate: share of calls shadow-run (0-1); ``serve`` mode reranks every call;
            ``interleave`` mode serves this share a team-draft interleaving of retrieval's
            and the reranker's order (the rest get retrieval's order, not reranked).
        max_queue: shadow work waiting beyond this is dropped and counted.
        batch_size: ``batch_size`` passed to ``predict``.
        model: ``gen_ai.request.model`` of the spans; read from the model if omitted.
        provider: ``gen_ai.provider.name``; the model class's top-level package if omitted.
        text: turns a candidate into the text scored; default: the string itself, or a
            ``text``/``content``/``page_content`` key or attribute.
        mode: fix the mode instead of reading ``OTEL_RERANK_MODE`` per call.
        on_result: called on the worker thread with each :class:`ShadowResult`; runs
            shadow work even when no telemetry SDK is configured.
        budget: a :class:`otel_rerank.RerankBudget`: in ``serve`` mode, rerank only the
            top k candidates that fit the request's time left (or none), recorded as
            ``rag.rerank.budget.*``.

    Document ids: pass ``ids=`` (one per candidate) to a call, or give candidates an id
    (a dict's ``id`` key, an object's ``id`` attribute); the rerank span then records the
    ids of the served and the reranked order (``rag.rerank.served.ids``,
    ``rag.rerank.reranked.ids``, at most 50 each), which ``otel_rerank.feedback`` joins to.
    """

    def __init__(
        self,
        cross_encoder: Any,
        sample_rate: float = 0.1,
        max_queue: int = 64,
        *,
        batch_size: int = 32,
        model: str | None = None,
        provider: str | None = None,
        text: Callable[[_T], str] | None = None,
        mode: str | None = None,
        on_result: Callable[[ShadowResult], None] | None = None,
        budget: RerankBudget | None = None,
    ) -> None:
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be within [0, 1], got {sample_rate}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, got {max_queue}")
        if mode is not None and mode.strip().lower() not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not callable(getattr(cross_encoder, "predict", None)):
            raise TypeError("cross_encoder needs a predict(pairs, batch_size=...) method")
        self.cross_encoder = cross_encoder
        self.sample_rate = sample_rate
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.mode = mode
        self.model = model or _model_name(cross_encoder)
        self.provider = provider or type(cross_encoder).__module__.split(".")[0]
        self._text: Callable[[Any], str] = text or _default_text
        self._on_result = on_result
        self.budget = budget
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._finalizer: weakref.finalize[[queue.Queue[Any]], ShadowReranker[Any]] | None = None
        self._closed = False
        self._abandon = False
        # The last exception raised by the user's code in the worker (model, on_result),
        # so the worker tells it from ours. Only the worker thread touches it.
        self._user_error: BaseException | None = None
        self._random = random.random
        self._metric_attributes = {
            semconv.GEN_AI_OPERATION_NAME: semconv.OPERATION_RERANK,
            semconv.GEN_AI_PROVIDER_NAME: self.provider,
            semconv.GEN_AI_REQUEST_MODEL: self.model,
        }
        _live.add(self)

    # -- the request path ----------------------------------------------------------------
    def __call__(
        self,
        query: str,
        candidates: list[_T],
        *,
        ids: Sequence[object] | None = None,
        deadline: float | None = None,
    ) -> list[_T]:
        """Serve ``candidates`` per the mode in force; see the class docstring.

        ``candidates`` may be any sequence (a list, a tuple, a numpy array) or a one-shot
        iterable such as a generator. A sequence is never copied for the caller: ``off`` and
        ``shadow`` return the very object given. A one-shot iterable cannot be both shadowed
        and returned, so ``shadow`` (and ``serve``) read it once into a list and return that
        list: the same items in the same order; ``off`` returns it untouched.

        Args:
            query: the query.
            candidates: retrieval's candidates, best first.
            ids: one document id per candidate (else read from the candidates).
            deadline: an explicit deadline for the budget guard (``time.monotonic()``
                seconds), with or without an ``otel_rerank.request`` budget.

        Returns:
            ``candidates`` itself (``off`` and ``shadow``), the list read from a one-shot
            iterable (``shadow``), or a new list in reranked order (``serve``).
        """
        mode = current_mode(self.mode)
        if mode == "off":
            return candidates
        candidates = _materialized(candidates)
        if mode == "shadow":
            self._submit(query, candidates, ids)
            return candidates
        if mode == "serve":
            return self._serve(query, candidates, ids, deadline)
        if mode == "interleave":
            if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
                return candidates  # outside the experiment: retrieval's order, no rerank
            return self._serve(query, candidates, ids, deadline, interleave=True)
        return candidates

    shadow = __call__

    async def acall(
        self,
        query: str,
        candidates: list[_T],
        *,
        ids: Sequence[object] | None = None,
        deadline: float | None = None,
    ) -> list[_T]:
        """The same from asyncio code: ``serve`` mode runs ``predict`` in a worker thread.

        ``shadow`` and ``off`` never block, so they run inline on the event loop.
        """
        mode = current_mode(self.mode)
        if mode == "serve" or (
            mode == "interleave" and (self.sample_rate >= 1.0 or self._random() < self.sample_rate)
        ):
            # to_thread copies the context: the rerank span's parent is the caller's span,
            # and the budget guard sees this request's budget.
            return await asyncio.to_thread(
                self._serve, query, _materialized(candidates), ids, deadline, mode == "interleave"
            )
        if mode == "interleave":
            return candidates
        return self(query, candidates, ids=ids)

    def _submit(self, query: str, candidates: list[_T], ids: Any = None) -> None:
        if self._closed or len(candidates) == 0:  # a numpy array has no truth value
            return
        if self.sample_rate < 1.0 and self._random() >= self.sample_rate:
            return
        telemetry = _telemetry.current()
        if telemetry is None and self._on_result is None:
            return  # nowhere to record the result: skip the work entirely
        span_context = trace.get_current_span().get_span_context()
        link = Link(span_context) if span_context.is_valid else None
        job = _Job(query, list(candidates), link, time.perf_counter(), ids)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            if telemetry is not None:
                with guard("ShadowReranker.dropped"):
                    telemetry.shadow_dropped.add(1, self._metric_attributes)
            return
        if self._worker is None:
            self._start_worker()

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is None and not self._closed:
                jobs = self._queue
                worker = threading.Thread(
                    target=_work,
                    args=(weakref.ref(self), jobs),
                    name="otel-rerank-shadow",
                    daemon=True,
                )
                worker.start()
                self._worker = worker
                self._finalizer = weakref.finalize(self, _wake_worker, jobs)
                self._finalizer.atexit = False

    def _serve(
        self,
        query: str,
        candidates: list[_T],
        ids: Any = None,
        deadline: float | None = None,
        interleave: bool = False,
    ) -> list[_T]:
        budget = self.budget
        decision = None if budget is None else budget.plan(len(candidates), deadline=deadline)
        k = len(candidates) if decision is None else decision.k
        order: list[int] | None = None
        merged: tuple[list[int], list[str]] | None = None

        def served(call: _span.StageSpan | None, scores: list[float] | None, ms: float) -> None:
            nonlocal order, merged
            order = _served_order(len(candidates), scores)
            if decision is not None and budget is not None and call is not None:
                budget.record(
                    decision,
                    ms if k else None,
                    span=call.span,
                    metric_attributes=self._metric_attributes,
                )
            merged = _team_draft(len(candidates), order, self._random) if interleave else None
            if call is not None:
                with guard("ShadowReranker orders"):
                    self._record_orders(call, candidates, ids, order, served=True, merged=merged)

        _, actual_ms, recorded = self._rerank(
            query,
            candidates[:k],
            shadow=False,
            predict=self._predict,
            clock=time.perf_counter if budget is None else budget.measure,
            then=served,
        )
        if decision is not None and budget is not None:
            if not recorded:
                budget.record(decision, None, span=trace.INVALID_SPAN)
            if k and order is not None:
                budget.observe(k, actual_ms)
        if order is None:
            return list(candidates)
        if merged is not None:
            return [candidates[i] for i in merged[0]]
        return [candidates[i] for i in order]

    def _rerank(
        self,
        query: str,
        candidates: Sequence[Any],
        *,
        shadow: bool,
        predict: Callable[[list[tuple[str, str]]], list[float] | None],
        clock: Callable[[], float] = time.perf_counter,
        link: Link | None = None,
        then: Callable[[_span.StageSpan | None, list[float] | None, float], None],
    ) -> tuple[list[float] | None, float, bool]:
        """Score ``candidates`` for ``query`` as one rerank span: the one rerank-and-record
        block of a served and a shadow run.

        ``then(call, scores, predict_ms)`` runs inside the span (``call`` is ``None`` when
        nothing records) for what only the caller records: the orders, the budget.
        Returns the scores (``None`` when unusable), the milliseconds ``predict`` took and
        whether a span recorded.
        """
        pairs = [(query, self._text(c)) for c in candidates]
        call = _span.begin(
            _span.RERANK,
            provider=self.provider,
            model=self.model,
            attributes={semconv.RAG_RERANK_SHADOW: shadow},
            links=[link] if link is not None else None,
        )
        if call is None:
            started = clock()
            scores = predict(pairs)
            elapsed_ms = (clock() - started) * 1000.0
            then(None, scores, elapsed_ms)
            return scores, elapsed_ms, False
        with call:
            call.record_candidates(len(pairs))
            call.set(semconv.RAG_BATCH_SIZE, self.batch_size)
            started = clock()
            scores = predict(pairs)
            elapsed_ms = (clock() - started) * 1000.0
            self._record(call, query, pairs, scores)
            then(call, scores, elapsed_ms)
        return scores, elapsed_ms, True

    @staticmethod
    def _record_orders(
        call: _span.StageSpan,
        candidates: list[Any],
        ids: Any,
        order: list[int] | None,
        *,
        served: bool,
        merged: tuple[list[int], list[str]] | None = None,
    ) -> None:
        """Ids of the served and the reranked order, for feedback to join (ids only)."""
        if not call.recording:
            return
        keys = candidate_ids(candidates, ids)
        if keys is not None:
            call.span.set_attributes(
                order_attributes(keys, order, served and order is not None, merged)
            )

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float] | None:
        if not pairs:
            return []
        # One span per run: the model's own (instrumented) predict must not add another.
        with suppress_instrumentation():
            raw = self.cross_encoder.predict(pairs, batch_size=self.batch_size)
        scores = float_list(raw)
        if scores is None or len(scores) != len(pairs):
            return None
        return scores

    @staticmethod
    def _record(
        call: _span.StageSpan,
        query: str,
        pairs: list[tuple[str, str]],
        scores: list[float] | None,
    ) -> None:
        call.record_scores(scores)
        call.record_content(_write_content, query, pairs)

    # -- the worker ----------------------------------------------------------------------
    def _shadow_run(self, job: _Job) -> None:
        started = time.perf_counter()

        def shadowed(call: _span.StageSpan | None, scores: list[float] | None, _: float) -> None:
            if call is not None and scores is not None:
                with guard("ShadowReranker orders"):
                    self._record_orders(
                        call, job.candidates, job.ids, reranked_order(scores), served=False
                    )

        scores, _, _ = self._rerank(
            job.query,
            job.candidates,
            shadow=True,
            predict=self._predict_abandonable,
            link=job.link,
            then=shadowed,
        )
        latency = time.perf_counter() - started
        if self._on_result is not None and scores is not None:
            summary = summarize_scores(scores)
            result = ShadowResult(
                query=job.query,
                scores=scores,
                order=reranked_order(scores),
                latency_s=latency,
                queue_wait_s=started - job.enqueued,
                top1_changed=bool(summary and summary.top1_changed),
                kendall_tau=summary.kendall_tau if summary else None,
            )
            try:
                self._on_result(result)
            except Exception as error:
                self._user_error = error
                raise

    def _predict_abandonable(self, pairs: list[tuple[str, str]]) -> list[float] | None:
        """``predict`` one batch at a time, giving up between batches once abandoned.

        A shadow run can be long (many candidates on a CPU); run whole, it would keep the
        worker inside the model for its full length after ``close()`` gave up on it, and a
        thread still inside native model code at interpreter teardown aborts the process.
        A cross-encoder scores each pair on its own, so the batches' scores are the same.
        """
        try:
            size = max(int(self.batch_size), 1)
            if len(pairs) <= size:
                return self._predict(pairs)
            scores: list[float] = []
            for start in range(0, len(pairs), size):
                if self._abandon:
                    return None
                part = self._predict(pairs[start : start + size])
                if part is None:
                    return None
                scores.extend(part)
            return scores
        except Exception as error:  # the model's (the worker only: see _work)
            self._user_error = error
            raise

    # -- lifetime ------------------------------------------------------------------------
    def _stop_taking_work(self) -> None:
        with self._lock:
            self._closed = True

    def close(self, timeout: float = 5.0, *, drain: bool = True) -> bool:
        """Stop taking shadow work and wait up to ``timeout`` s for queued work to finish.

        Never waits longer than ``timeout``, even with a full queue. At 80 % of it (at once
        with ``drain=False``), work still queued is abandoned, and a run in progress stops
        at its next batch; the rest of the time is left for that batch to finish. A
        ``predict`` that never returns cannot be interrupted: the daemon worker is left to
        it, and waited for once more (within the exit bound) at interpreter exit.

        Returns:
            True when every queued run finished within the bound.
        """
        with self._lock:
            self._closed = True
            worker = self._worker
        if worker is None:
            _live.discard(self)
            return True
        start = time.monotonic()
        timeout = max(timeout, 0.0)
        # Never blocks: with a full queue the worker stops once it has emptied it.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(_STOP)
        if drain:
            worker.join(0.8 * timeout)
        if worker.is_alive():
            self._abandon_queued()
            worker.join(max(start + timeout - time.monotonic(), 0.0))
        if worker.is_alive():
            # Stays known to close_all(), which waits for it again at interpreter exit: a
            # thread still inside native model code when the interpreter tears down aborts
            # the process ("terminate called without an active exception").
            return False
        _live.discard(self)
        return True

    def _abandon_queued(self) -> None:
        self._abandon = True
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with contextlib.suppress(queue.Full):  # just emptied; another caller may refill it
            self._queue.put_nowait(_STOP)

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._queue = queue.Queue(maxsize=self.max_queue)
        self._worker = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    @property
    def pending(self) -> int:
        """Shadow runs waiting in the queue (approximate)."""
        return self._queue.qsize()

    def __enter__(self) -> ShadowReranker[_T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _served_order(count: int, top_scores: list[float] | None) -> list[int] | None:
    """The top ``len(top_scores)`` by descending score, then the rest in retrieval's order.

    ``None`` when the scores are unusable (retrieval's order is served) or none were asked
    for (the budget guard skipped the rerank).
    """
    if not top_scores:
        return None
    return [*reranked_order(top_scores), *range(len(top_scores), count)]


def _team_draft(
    count: int, reranked: list[int] | None, coin: Callable[[], float]
) -> tuple[list[int], list[str]] | None:
    """Team-draft interleaving (Radlinski et al., 2008) of retrieval's order and ``reranked``.

    Each round, the team with fewer picks (a coin flip on a tie) adds its best candidate not
    yet taken. Returns the merged indices and, per position, the team that contributed it
    (``retrieval`` or ``reranked``): feedback on a document is credited to that team.
    ``None`` when there is nothing to interleave.
    """
    if reranked is None:
        return None
    teams_order = {
        semconv.SERVED_ORDER_RETRIEVAL: list(range(count)),
        semconv.SERVED_ORDER_RERANKED: reranked,
    }
    position = dict.fromkeys(teams_order, 0)
    picks = dict.fromkeys(teams_order, 0)
    taken: set[int] = set()
    merged: list[int] = []
    teams: list[str] = []
    while len(merged) < count:
        first, second = semconv.SERVED_ORDER_RETRIEVAL, semconv.SERVED_ORDER_RERANKED
        if picks[second] < picks[first] or (picks[first] == picks[second] and coin() < 0.5):
            first, second = second, first
        for team in (first, second):
            order = teams_order[team]
            while position[team] < len(order) and order[position[team]] in taken:
                position[team] += 1
            if position[team] < len(order):
                chosen = order[position[team]]
                taken.add(chosen)
                merged.append(chosen)
                teams.append(team)
                picks[team] += 1
                break
        else:
            break
    return merged, teams


def _materialized(candidates: Any) -> Any:
    """``candidates`` itself if it can be read twice (has a length), else a list of it."""
    if hasattr(candidates, "__len__") and hasattr(candidates, "__getitem__"):
        return candidates
    return list(candidates)


def _write_content(call: _span.StageSpan, query: str, pairs: list[tuple[str, str]]) -> None:
    """The query and the documents scored (run only when content is captured)."""
    call.record_text(semconv.RERANKER_QUERY, query)
    call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, [doc for _, doc in pairs])


def _model_name(cross_encoder: Any) -> str:
    with guard("ShadowReranker model name"):
        return model_name_of(cross_encoder)
    return type(cross_encoder).__name__  # its attributes raised
