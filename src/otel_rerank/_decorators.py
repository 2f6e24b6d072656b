"""Stage decorators and context managers for the user's own RAG code.

``otel_rerank.embedding``, ``retrieval``, ``rerank`` and ``llm`` each work bare
(``@otel_rerank.rerank``), with arguments (``@otel_rerank.rerank(model="bge")``), on sync
functions, ``async def`` functions, generators and async generators, and as a context
manager (``with otel_rerank.rerank(model="bge") as span:``). The span covers the real work:
the awaited coroutine, or a generator until it is exhausted or closed, with the span made
current only while the generator body runs (never across a ``yield``).

Providers are looked up on every call (see ``otel_rerank._telemetry``), not when the
function is decorated. A rerank function whose parameters look like ``(query, documents)``
gets its candidate count, and, if it returns one number per document, the top score,
top-1 change and Kendall's tau, without the user writing anything.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from types import TracebackType
from typing import Any, TypeVar, overload

from opentelemetry import context
from opentelemetry.util.types import AttributeValue

from otel_rerank import _scopes, _span, semconv
from otel_rerank._span import Stage, StageSpan
from otel_rerank._values import float_list, sized_length

_F = TypeVar("_F", bound=Callable[..., Any])

DEFAULT_PROVIDER = "custom"
_QUERY_NAMES = ("query", "question", "q", "text", "prompt")
_DOCUMENT_NAMES = ("documents", "docs", "candidates", "passages", "texts", "hits", "chunks")


class _Options:
    """What the decorator or context manager was given, resolved once."""

    __slots__ = ("attributes", "detail", "model", "provider", "stage")

    def __init__(
        self,
        stage: Stage,
        model: str | None,
        provider: str | None,
        attributes: Mapping[str, AttributeValue],
        detail: str | None,
    ) -> None:
        self.stage = stage
        self.model = model
        self.provider = provider or DEFAULT_PROVIDER
        self.attributes = dict(attributes)
        self.detail = detail

    def begin(self) -> StageSpan | None:
        return _span.begin(
            self.stage,
            provider=self.provider,
            model=self.model,
            detail=self.detail,
            attributes=self.attributes,
        )


class _ArgumentReader:
    """Finds a rerank function's query and documents by parameter name, once per function."""

    __slots__ = ("_documents", "_query")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self._query: tuple[str, int] | None = None
        self._documents: tuple[str, int] | None = None
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
            ]
        except (TypeError, ValueError):
            return
        positional = [p for p in params if p.kind is not p.KEYWORD_ONLY]
        index = {p.name: i for i, p in enumerate(positional)}
        user_params = [p for p in positional if p.name not in ("self", "cls")]
        query = next((p for p in params if p.name in _QUERY_NAMES), None)
        docs = next((p for p in params if p.name in _DOCUMENT_NAMES), None)
        if query is None and docs is None and len(user_params) >= 2:
            query, docs = user_params[0], user_params[1]
        if query is not None:
            self._query = (query.name, index.get(query.name, -1))
        if docs is not None:
            self._documents = (docs.name, index.get(docs.name, -1))

    @staticmethod
    def _get(where: tuple[str, int] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if where is None:
            return None
        name, position = where
        if name in kwargs:
            return kwargs[name]
        return args[position] if 0 <= position < len(args) else None

    def query(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._get(self._query, args, kwargs)

    def documents(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return self._get(self._documents, args, kwargs)


def _write_rerank_input(call: StageSpan, query: object, documents: object) -> None:
    """A decorated reranker's query and string documents (run only with capture on)."""
    if isinstance(query, str):
        call.record_text(semconv.RERANKER_QUERY, query)
    if isinstance(documents, (list, tuple)):
        call.record_documents(
            semconv.RERANKER_INPUT_DOCUMENTS,
            [d if isinstance(d, str) else None for d in documents],
        )


class _Recorder:
    """Stage-specific automatic attributes for a decorated function (before and after).

    Attributes:
        reads_arguments: whether :meth:`before` records anything (a reranker's candidates
            and content); when not, the wrappers do not call it.
        reads_result: whether :meth:`after` records anything (a reranker's scores, a
            retrieval's hit count); when not, the wrappers do not call it.
    """

    __slots__ = ("_reader", "_stage", "reads_arguments", "reads_result")

    def __init__(self, stage: Stage, fn: Callable[..., Any]) -> None:
        self._stage = stage
        self._reader = _ArgumentReader(fn) if stage is _span.RERANK else None
        self.reads_arguments = self._reader is not None
        self.reads_result = stage is _span.RERANK or stage is _span.RETRIEVAL

    def before(self, call: StageSpan, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
        reader = self._reader
        if reader is None:
            return None
        documents = reader.documents(args, kwargs)
        count = sized_length(documents)
        call.record_candidates(count)
        call.record_content(_write_rerank_input, reader.query(args, kwargs), documents)
        return count

    def after(self, call: StageSpan, result: Any, candidates: int | None) -> None:
        if not call.recording:
            return
        if self._stage is _span.RERANK and candidates:
            scores = float_list(result)
            if scores is not None and len(scores) == candidates:
                call.record_scores(scores)
        elif self._stage is _span.RETRIEVAL:
            call.set(semconv.RAG_RETRIEVAL_RETURNED_COUNT, retrieved_count(result))


# Where retrieval results keep their hits: Haystack components return {"documents": [...]},
# LlamaIndex results carry ``nodes``, vector-store clients ``results`` / ``matches``.
_HIT_FIELDS = ("documents", "nodes", "results", "matches")


def retrieved_count(result: Any) -> int | None:
    """How many hits a retrieval function returned, or ``None`` when that cannot be told.

    A sequence counts its items; a mapping or object counts the hits under one of
    ``documents``, ``nodes``, ``results``, ``matches``; a tuple of equal-length sequences
    (``(documents, scores)``) counts one of them. Anything else records nothing rather
    than a wrong count (a dict's number of keys, a pair's 2).
    """
    if isinstance(result, tuple) and hasattr(result, "_asdict"):  # a NamedTuple
        result = result._asdict()
    if isinstance(result, Mapping):
        for name in _HIT_FIELDS:
            if name in result:
                return _hit_count(result[name])
        return None
    if isinstance(result, tuple):
        lengths = {_hit_count(item) for item in result}
        if lengths == {None}:
            return len(result)  # a tuple of hits
        return lengths.pop() if len(lengths) == 1 else None
    count = _hit_count(result)
    if count is not None:
        return count
    for name in _HIT_FIELDS:
        hits = getattr(result, name, None)
        if hits is not None:
            return _hit_count(hits)
    return None


def _hit_count(value: Any) -> int | None:
    """``len`` of a list-like of hits (not a string, mapping or scalar), else ``None``."""
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        return None
    return sized_length(value)


def _call_kind(fn: Callable[..., Any]) -> str:
    """``asyncgen``, ``gen``, ``async`` or ``sync``: how a call of ``fn`` does its work.

    An object whose ``__call__`` is ``async def`` (or a generator) counts as one, so the
    span covers the awaited work, not just the creation of the coroutine.
    """
    candidates = [fn]
    if not inspect.isroutine(fn) and not inspect.isclass(fn):
        call = inspect.getattr_static(type(fn), "__call__", None)
        if call is not None:
            candidates.append(call)
    for candidate in candidates:
        if inspect.isasyncgenfunction(candidate):
            return "asyncgen"
        if inspect.isgeneratorfunction(candidate):
            return "gen"
        if inspect.iscoroutinefunction(candidate):
            return "async"
    return "sync"


def _decorate(options: _Options, fn: _F) -> _F:
    recorder = _Recorder(options.stage, fn)

    kind = _call_kind(fn)

    if kind == "asyncgen":

        @functools.wraps(fn)
        async def async_gen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            # Written out rather than ``async for``: that would forward no ``asend`` value, no
            # ``athrow`` and no ``aclose`` to the user's generator.
            call = options.begin()
            if call is not None and recorder.reads_arguments:
                call.safely(recorder.before, call, args, kwargs)
            inner = fn(*args, **kwargs)
            span_context = call.context if call is not None else None
            to_send: Any = None
            to_throw: BaseException | None = None
            try:
                while True:
                    token = context.attach(span_context) if span_context is not None else None
                    try:
                        if to_throw is not None:
                            error, to_throw = to_throw, None
                            item = await inner.athrow(error)
                        else:
                            item = await inner.asend(to_send)
                    finally:
                        if token is not None:
                            context.detach(token)
                    try:
                        to_send = yield item
                    except GeneratorExit:
                        await inner.aclose()
                        raise
                    except BaseException as error:  # thrown in by the consumer: pass it on
                        to_throw = error
            except StopAsyncIteration:
                if call is not None:
                    call.end()
            except BaseException as error:
                if call is not None:
                    call.end(error)
                raise

        return async_gen_wrapper  # type: ignore[return-value]

    if kind == "gen":

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            call = options.begin()
            if call is None:
                return (yield from fn(*args, **kwargs))
            if recorder.reads_arguments:
                call.safely(recorder.before, call, args, kwargs)
            return (yield from _traced_generator(call, fn(*args, **kwargs)))

        return gen_wrapper  # type: ignore[return-value]

    if kind == "async":

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            call = options.begin()
            if call is None:
                return await fn(*args, **kwargs)
            with call:
                candidates = (
                    call.safely(recorder.before, call, args, kwargs)
                    if recorder.reads_arguments
                    else None
                )
                result = await fn(*args, **kwargs)
                if recorder.reads_result:
                    call.safely(recorder.after, call, result, candidates)
                return result

        return async_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = options.begin()
        if call is None:
            return fn(*args, **kwargs)
        with call:
            candidates = (
                call.safely(recorder.before, call, args, kwargs)
                if recorder.reads_arguments
                else None
            )
            result = fn(*args, **kwargs)
            if recorder.reads_result:
                call.safely(recorder.after, call, result, candidates)
            return result

    return wrapper  # type: ignore[return-value]


def _traced_generator(call: StageSpan, inner: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Delegate to ``inner`` with the span current only while ``inner`` runs."""
    span_context = call.context
    to_send: Any = None
    to_throw: BaseException | None = None
    try:
        while True:
            token = context.attach(span_context)
            try:
                if to_throw is not None:
                    error, to_throw = to_throw, None
                    item = inner.throw(error)
                else:
                    item = inner.send(to_send)
            finally:
                context.detach(token)
            try:
                to_send = yield item
            except GeneratorExit:
                inner.close()
                raise
            except BaseException as error:  # thrown in by the consumer: pass it on
                to_throw = error
    except StopIteration as stop:
        call.end()
        return stop.value
    except BaseException as error:
        call.end(error)
        raise


class StageScope:
    """A configured stage: use it as a decorator or as a (sync or async) context manager."""

    def __init__(self, options: _Options) -> None:
        self._options = options

    def __call__(self, fn: _F) -> _F:
        if not callable(fn):
            raise TypeError(f"otel_rerank.{self._options.stage.operation}: {fn!r} is not callable")
        return _decorate(self._options, fn)

    def __enter__(self) -> StageSpan:
        call = self._options.begin()
        # Per context, not per object: one module-level scope is entered by many threads
        # and tasks at once, each of which must end its own span.
        _scopes.push(self, call)
        if call is None:
            return _span.NON_RECORDING  # the same API, recording nothing
        return call.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _, call = _scopes.pop(self)
        if call is not None:
            call.__exit__(exc_type, exc, tb)

    async def __aenter__(self) -> StageSpan:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class _StageFactory:
    """``otel_rerank.<stage>``: decorator, decorator factory and context-manager factory."""

    def __init__(self, stage: Stage, keys: Mapping[str, str], detail_key: str | None) -> None:
        self._stage = stage
        self._keys = keys  # stage-specific argument name -> attribute key
        self._detail_key = detail_key
        self.__name__ = {"chat": "llm", "embeddings": "embedding"}.get(
            stage.operation, stage.operation
        )
        self.__doc__ = (
            f"Trace a {stage.operation} step: decorator (bare or with arguments) or context "
            f"manager. Arguments: model, provider" + "".join(f", {k}" for k in keys) + "."
        )

    @overload
    def __call__(self, fn: _F, /) -> _F: ...

    @overload
    def __call__(
        self, fn: None = None, /, *, model: str | None = None, provider: str | None = None,
        **stage_arguments: Any,
    ) -> StageScope: ...  # fmt: skip

    def __call__(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        model: str | None = None,
        provider: str | None = None,
        **stage_arguments: Any,
    ) -> Any:
        unknown = set(stage_arguments) - set(self._keys)
        if unknown:
            raise TypeError(
                f"otel_rerank.{self.__name__}() got unexpected argument(s): "
                + ", ".join(sorted(unknown))
            )
        attributes: dict[str, AttributeValue] = {
            self._keys[k]: v for k, v in stage_arguments.items() if v is not None
        }
        detail = stage_arguments.get(self._detail_key) if self._detail_key else None
        scope = StageScope(_Options(self._stage, model, provider, attributes, detail))
        if fn is not None:
            return scope(fn)
        return scope

    def __repr__(self) -> str:
        return f"otel_rerank.{self.__name__}"


embedding = _StageFactory(_span.EMBEDDINGS, {}, None)
retrieval = _StageFactory(
    _span.RETRIEVAL,
    {"top_k": semconv.GEN_AI_RETRIEVAL_TOP_K, "data_source": semconv.GEN_AI_DATA_SOURCE_ID},
    "data_source",
)
rerank = _StageFactory(_span.RERANK, {"top_n": semconv.GEN_AI_RERANK_TOP_N}, None)
llm = _StageFactory(_span.CHAT, {}, None)
