"""Hostile input: extraction never fails, and the user's call behaves as if uninstrumented.

Two properties, fuzzed with hypothesis over the values users really pass (see
``tests/_hostile.py``: numpy arrays and torch tensors of any shape, generators, ``None``,
huge strings, bytes, dicts where lists belong, nested mixtures):

1. **Extraction never fails** (``_safe.STRICT`` on, so any internal error re-raises): every
   extraction function of every instrumentation, the shared helpers, and the decorators'
   argument reader accept anything and yield only valid attribute values.
2. **The user's call is unchanged** (same result object, or the same exception object):
   decorated functions of every stage and shape, and the real sentence-transformers
   ``encode`` / ``predict`` / ``rank``, compared with the uninstrumented original. With
   objects whose every protocol raises (and mocks), ``STRICT`` is off: our errors are
   swallowed, never the user's problem.

Generators and iterators handed to an instrumented call are never consumed by us.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import math
import types
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otel_rerank
from otel_rerank import _safe, instrumentation
from otel_rerank._config import ContentPolicy
from otel_rerank._decorators import _ArgumentReader
from otel_rerank.instrumentation import _common, _llm
from otel_rerank.instrumentation.anthropic import _attributes as anthropic_attributes
from otel_rerank.instrumentation.openai import _attributes as openai_attributes
from otel_rerank.instrumentation.sentence_transformers import _attributes as st_attributes
from tests._hostile import (
    Hostile,
    arguments,
    hostile_values,
    odd_values,
    reusable_values,
    valid_attribute_value,
)
from tests.conftest import Otel, make_otel

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def _only_valid_attributes() -> Iterator[None]:
    """Every attribute we write is one the SDK accepts: it warns (and coerces) otherwise."""
    handler = _Collect()
    sdk_logger = logging.getLogger("opentelemetry.attributes")
    sdk_logger.addHandler(handler)
    try:
        yield
    finally:
        sdk_logger.removeHandler(handler)
    assert not handler.messages, handler.messages[:3]


FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- 1. extraction never fails ---------------------------------------------------------------

_instances = st.one_of(
    odd_values,
    st.builds(
        types.SimpleNamespace,
        **{
            name: odd_values
            for name in (
                "device",
                "max_seq_length",
                "model_card_data",
                "config",
                "base_url",
                "_client",
                "_client_wrapper",
                "name",
                "metadata",
                "d",
                "ntotal",
            )
        },
    ),
)

# Parameters that carry our own, already-typed values get values of that type; the rest
# (bound arguments, library instances, results) get anything at all.
_TYPED: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int | None": st.none() | st.integers(-5, 10),
    "str": st.text(max_size=20),
    "Sequence[Any]": st.lists(odd_values, max_size=5),
    "Sequence[tuple[int, float]] | None": st.none()
    | st.lists(st.tuples(st.integers(-3, 10), st.floats(allow_nan=True)), max_size=6),
    # The LLM clients' request parameter tables (_llm.read_parameters reads with them).
    "Mapping[str, ParameterReader]": st.sampled_from(
        [
            openai_attributes._CHAT_PARAMETERS,
            openai_attributes._EMBEDDINGS_PARAMETERS,
            anthropic_attributes._PARAMETERS,
        ]
    ),
}


def _strategy(parameter: inspect.Parameter, span: Any = None) -> st.SearchStrategy[Any]:
    if parameter.annotation == "StageSpan":
        return st.just(span)
    if parameter.annotation == "Mapping[str, Any]":
        return arguments()
    if parameter.annotation == "Any":
        if parameter.name in ("instance", "index", "collection", "client"):
            return _instances
        return odd_values
    return _TYPED[str(parameter.annotation)]


#: Public functions that are user-facing API, not extraction (they may reject bad input).
_NOT_EXTRACTION = {("faiss", "set_data_source")}


def _extractors() -> list[Any]:
    found = []
    # Every library's extraction module, and the helpers the LLM clients share.
    modules = [f"{library}._attributes" for library in instrumentation.libraries()] + ["_llm"]
    for name_in_package in modules:
        library = name_in_package.split(".")[0]
        try:
            module = importlib.import_module(f"otel_rerank.instrumentation.{name_in_package}")
        except ModuleNotFoundError:  # not built yet
            continue
        for name, fn in vars(module).items():
            if (
                name.startswith("_")
                or not inspect.isfunction(fn)
                or fn.__module__ != module.__name__
                or (library, name) in _NOT_EXTRACTION
            ):
                continue
            found.append(pytest.param(fn, id=f"{library}.{name}"))
    return found


def _check_output(output: Any) -> None:
    # Pairs come as a generator, a tuple of pairs (an LLM request's, its span's cache key;
    # hashable, see _llm.Operation.opening) or a dict of attributes (_llm.read_parameters).
    if isinstance(output, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in output):
        hash(output)
    elif isinstance(output, dict):
        output = output.items()
    elif not inspect.isgenerator(output):
        return
    for key, value in output:
        assert isinstance(key, str)
        assert value is None or valid_attribute_value(value), (key, value)


@pytest.mark.parametrize("extractor", _extractors())
def test_extraction_never_fails_on_odd_input(extractor: Callable[..., Any]) -> None:
    """Extractors, and the writers the generic wrapper hands a span (capture on)."""
    from otel_rerank import _span

    parameters = inspect.signature(extractor).parameters

    def check(span: Any = None) -> None:
        strategies = {name: _strategy(p, span) for name, p in parameters.items()}

        @FUZZ
        @given(st.fixed_dictionaries(strategies))
        def run(kwargs: dict[str, Any]) -> None:
            _check_output(extractor(**kwargs))

        run()

    if not any(p.annotation == "StageSpan" for p in parameters.values()):
        check()
        return
    sdk = make_otel()
    sdk.instrument(capture_content=True)
    try:
        call = _span.begin(_span.RERANK, provider="fuzz")  # recording, capturing
        assert call is not None and call.capturing
        check(call)
        call.end()
    finally:
        otel_rerank.uninstrument()
        sdk.tracer_provider.shutdown()
        sdk.meter_provider.shutdown()


def _stream_states() -> list[Any]:
    found = []
    for library, name in (("openai", "ChatStreamState"), ("anthropic", "MessageStreamState")):
        try:
            module = importlib.import_module(f"otel_rerank.instrumentation.{library}._attributes")
        except ModuleNotFoundError:
            continue
        if hasattr(module, name):
            found.append(pytest.param(getattr(module, name), id=f"{library}.{name}"))
    return found


@pytest.mark.parametrize("state_class", _stream_states())
def test_stream_accumulators_accept_any_chunk(state_class: type[Any]) -> None:
    @FUZZ
    @given(st.integers(1, 50), st.lists(st.one_of(odd_values, _instances), max_size=5))
    def check(limit: int, chunks: list[Any]) -> None:
        state = state_class(limit)
        for chunk in chunks:
            state.add(chunk)
        _check_output(state.attributes())
        assert all(count is None or isinstance(count, int) for count in state.usage())
        output = state.output()
        if output is not None:
            messages, reasons = output
            assert all(isinstance(text, str) for _, text in messages)
            assert len(reasons) == len(messages)

    check()


@FUZZ
@given(st.integers(1, 40), st.lists(st.text(max_size=12), max_size=30))
def test_a_stream_keeps_only_what_the_policy_cut_needs(limit: int, pieces: list[str]) -> None:
    kept = _llm.BoundedText(limit)
    for piece in pieces:
        kept.add(piece)
    policy = ContentPolicy(max_length=limit)
    assert policy.truncate(kept.text()) == policy.truncate("".join(pieces))
    assert len(kept.text()) <= limit + 12  # at most one piece past the limit


@FUZZ
@given(odd_values)
def test_shared_helpers_accept_anything(value: Any) -> None:
    scores = _common.float_list(value)
    assert scores is None or all(isinstance(s, float) for s in scores)
    length = _common.sized_length(value)
    assert length is None or (isinstance(length, int) and length >= 0)


@FUZZ
@given(st.text(max_size=300) | st.just("/" * 5000) | st.just("models--a--b/snapshots/" + "f" * 40))
def test_model_name_from_any_path(path: str) -> None:
    assert isinstance(_common.model_name_from_path(path), str)


def _signatures() -> list[Callable[..., Any]]:
    def plain(query: Any, documents: Any, top_k: int = 3) -> None: ...
    def keyword_only(*, query: Any = None, documents: Any = None) -> None: ...
    def positional_only(query: Any, documents: Any, /) -> None: ...
    def varargs(*args: Any, **kwargs: Any) -> None: ...

    class Model:
        def rank(self, query: Any, documents: Any, **options: Any) -> None: ...

    return [plain, keyword_only, positional_only, varargs, Model().rank, len, print]


@pytest.mark.parametrize("fn", _signatures(), ids=lambda f: getattr(f, "__name__", "fn"))
def test_bind_arguments_and_argument_reader_accept_any_call(fn: Callable[..., Any]) -> None:
    reader = _ArgumentReader(fn)

    @FUZZ
    @given(st.lists(odd_values, max_size=4), st.dictionaries(st.text(max_size=8), odd_values))
    def check(args: list[Any], kwargs: dict[str, Any]) -> None:
        bound = _common.bind_arguments(fn, tuple(args), kwargs)
        assert isinstance(bound, dict)
        reader.query(tuple(args), kwargs)
        reader.documents(tuple(args), kwargs)

    check()


def test_rank_scores_ignores_results_that_are_not_rank_dicts() -> None:
    # A CrossEncoder subclass whose rank() returns (index, score) tuples, or junk.
    assert st_attributes.rank_scores([(0, 0.5), (1, 0.2)], 2) is None
    assert st_attributes.rank_scores([None, None], 2) is None
    assert st_attributes.rank_scores([{"corpus_id": 0, "score": "high"}], 1) is None
    assert st_attributes.rank_scores([{"corpus_id": 0, "score": 0.5}], 1) == [0.5]


# -- 2. the user's call is unchanged ---------------------------------------------------------


def _same(instrumented: Callable[[], Any], original: Callable[[], Any]) -> None:
    """Both calls return equal results or raise the same exception type and message."""
    outcomes = []
    for call in (instrumented, original):
        try:
            outcomes.append(("ok", call()))
        except Exception as error:
            outcomes.append(("error", (type(error), str(error))))
    (kind_a, a), (kind_b, b) = outcomes
    assert kind_a == kind_b, outcomes
    if kind_a == "error":
        assert a == b
    else:
        _assert_equal(a, b)


def _assert_equal(a: Any, b: Any) -> None:
    if hasattr(a, "shape") and hasattr(a, "tolist"):
        assert np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    elif isinstance(a, (list, tuple)) and a and hasattr(a[0], "shape"):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_equal(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


_STAGES = (otel_rerank.embedding, otel_rerank.retrieval, otel_rerank.rerank, otel_rerank.llm)


class _UserError(Exception):
    pass


def _user_functions(result: Any, error: BaseException | None) -> dict[str, Callable[..., Any]]:
    """The same user code as a sync function, a coroutine function and a generator."""

    def sync_fn(query: Any, documents: Any) -> Any:
        if error is not None:
            raise error
        return result

    async def async_fn(query: Any, documents: Any) -> Any:
        if error is not None:
            raise error
        return result

    def gen_fn(query: Any, documents: Any) -> Iterator[Any]:
        yield result
        if error is not None:
            raise error
        yield documents

    return {"sync": sync_fn, "async": async_fn, "generator": gen_fn}


def _invoke(kind: str, fn: Callable[..., Any], query: Any, documents: Any) -> Any:
    if kind == "async":
        return asyncio.run(fn(query, documents))
    if kind == "generator":
        return list(fn(query, documents))
    return fn(query, documents)


def _check_decorated(
    query: Any, documents: Any, result: Any, raises: bool, capture: bool, otel: Otel
) -> None:
    error = _UserError("user error") if raises else None
    otel.instrument(capture_content=capture)
    try:
        for stage in _STAGES:
            for kind, fn in _user_functions(result, error).items():
                decorated = stage(fn)
                try:
                    got = _invoke(kind, decorated, query, documents)
                except _UserError as raised:
                    assert raised is error  # the user's exception object, unchanged
                    continue
                assert error is None
                expected = [result, documents] if kind == "generator" else result
                assert got is expected or (
                    kind == "generator" and all(x is y for x, y in zip(got, expected, strict=True))
                )
    finally:
        otel_rerank.uninstrument()


@pytest.mark.parametrize("capture", [False, True], ids=["content-off", "content-on"])
def test_decorated_calls_unchanged_by_odd_input(capture: bool) -> None:
    otel = make_otel()

    @FUZZ
    @given(odd_values, odd_values, odd_values, st.booleans())
    def check(query: Any, documents: Any, result: Any, raises: bool) -> None:
        _check_decorated(query, documents, result, raises, capture, otel)

    check()
    assert otel.spans(), "nothing was recorded"


def test_decorated_calls_unchanged_by_hostile_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_safe, "STRICT", False)  # our errors are swallowed, as in production
    otel = make_otel()

    @FUZZ
    @given(hostile_values, hostile_values, hostile_values, st.booleans(), st.booleans())
    def check(query: Any, documents: Any, result: Any, raises: bool, capture: bool) -> None:
        _check_decorated(query, documents, result, raises, capture, otel)

    check()


@pytest.mark.parametrize(
    "value", [["a", "b"], {"k": 1}, 3, Hostile()], ids=["list", "dict", "int", "hostile"]
)
def test_decorator_options_of_any_type_never_break_the_call(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``model=`` and ``data_source=`` are typed ``str``; callers pass anything."""
    hostile = isinstance(value, Hostile)
    monkeypatch.setattr(_safe, "STRICT", not hostile)  # a hostile value is an error we swallow
    otel = make_otel()
    otel.instrument()
    try:

        @otel_rerank.retrieval(model=value, data_source=value)
        def search(query: str) -> list[str]:
            return [query]

        for _ in range(2):  # the second call finds the first one's cached span identity
            assert search("q") == ["q"]
    finally:
        otel_rerank.uninstrument()
    assert len(otel.spans()) == (0 if hostile else 2)


@pytest.mark.parametrize(
    "value",
    [Hostile(), mock.Mock(), mock.MagicMock(), [Hostile()], np.zeros((2, 2)), iter([1.0])],
    ids=["hostile", "mock", "magicmock", "list-of-hostile", "2d-array", "iterator"],
)
def test_rerank_returning_odd_scores_returns_them_unchanged(
    value: Any, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scores of an odd type (a mock in the user's test suite) come back as they were."""
    monkeypatch.setattr(_safe, "STRICT", False)

    @otel_rerank.rerank
    def rerank(query: str, documents: Any) -> Any:
        return value

    assert rerank("q", value) is value
    assert rerank("q", ["a", "b"]) is value
    assert len(otel.spans()) == 2
    assert all(s.status.is_ok for s in otel.spans())


# -- generators and iterators are never consumed by us ---------------------------------------


@FUZZ
@given(st.lists(st.text(max_size=20), max_size=8), st.booleans())
def test_generator_arguments_reach_the_user_untouched(items: list[str], capture: bool) -> None:
    otel = make_otel()
    otel.instrument(capture_content=capture)
    try:
        for stage in _STAGES:

            @stage
            def consume(query: Any, documents: Any) -> list[str]:
                return list(documents)

            assert consume("q", (x for x in items)) == items
            assert consume("q", iter(items)) == items
            assert consume(query="q", documents=(x for x in items)) == items

            @stage
            def produce(query: Any, documents: Any) -> Iterator[str]:
                return (x for x in items)

            assert list(produce("q", items)) == items  # a returned generator is not drained
    finally:
        otel_rerank.uninstrument()
    assert len(otel.spans()) == 4 * 4


# -- the real sentence-transformers calls ----------------------------------------------------

_pair_items = st.one_of(
    st.tuples(st.text(max_size=20), st.text(max_size=20)),
    st.lists(st.text(max_size=20), min_size=2, max_size=2),
    reusable_values,
)
_predict_inputs = st.one_of(
    st.lists(_pair_items, max_size=4),
    st.tuples(st.text(max_size=10), st.text(max_size=10)),
    st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=4).map(
        lambda pairs: (p for p in pairs)
    ),
    reusable_values,
)


def _original(cls: type, method: str) -> Callable[..., Any]:
    return getattr(cls.__dict__[method], "__wrapped__", cls.__dict__[method])


@pytest.mark.slow
def test_cross_encoder_calls_unchanged_by_odd_input(
    otel: Otel, tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers import CrossEncoder

    otel.instrument(capture_content=True)
    predict, rank = _original(CrossEncoder, "predict"), _original(CrossEncoder, "rank")
    assert predict is not CrossEncoder.__dict__["predict"], "CrossEncoder is not instrumented"
    model = tiny_cross_encoder

    @FUZZ
    @given(_predict_inputs, st.sampled_from([None, 1, 2, 32]))
    def check_predict(inputs: Any, batch_size: int | None) -> None:
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        if inspect.isgenerator(inputs):  # each side gets its own, equal generator
            items = list(inputs)
            _same(
                lambda: model.predict((x for x in items), **kwargs),
                lambda: predict(model, (x for x in items), **kwargs),
            )
        else:
            _same(lambda: model.predict(inputs, **kwargs), lambda: predict(model, inputs, **kwargs))

    @FUZZ
    @given(
        reusable_values,
        st.one_of(st.lists(st.text(max_size=15), max_size=5), reusable_values),
        reusable_values,
    )
    def check_rank(query: Any, documents: Any, top_k: Any) -> None:
        _same(
            lambda: model.rank(query, documents, top_k=top_k),
            lambda: rank(model, query, documents, top_k=top_k),
        )

    check_predict()
    check_rank()
    # A generator given to predict is left for the library alone to use.
    pairs = [("q", "a"), ("q", "b")]
    _same(lambda: model.predict(iter(pairs)), lambda: predict(model, iter(pairs)))


@pytest.mark.slow
def test_sentence_transformer_encode_unchanged_by_odd_input(otel: Otel, minilm: Any) -> None:
    from sentence_transformers import SentenceTransformer

    otel.instrument(capture_content=True)
    encode = _original(SentenceTransformer, "encode")
    assert encode is not SentenceTransformer.__dict__["encode"]

    @settings(FUZZ, max_examples=15)
    @given(
        st.one_of(
            st.text(max_size=30),
            st.lists(st.text(max_size=30), max_size=3),
            st.lists(reusable_values, max_size=2),
            reusable_values,
        ),
        st.sampled_from([None, 1, 8]),
    )
    def check(inputs: Any, batch_size: int | None) -> None:
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        _same(lambda: minilm.encode(inputs, **kwargs), lambda: encode(minilm, inputs, **kwargs))

    check()


@pytest.mark.parametrize("wrapper_name", ["encode", "predict", "rank"])
def test_sentence_transformers_wrappers_survive_a_hostile_instance(
    wrapper_name: str, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model object (a user's subclass, a proxy) whose every attribute raises."""
    from otel_rerank.instrumentation import sentence_transformers

    monkeypatch.setattr(_safe, "STRICT", False)
    wrapper = getattr(sentence_transformers, wrapper_name.upper()).wrapper
    sentinel = object()

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return sentinel

    for args in [(), (Hostile(),), ("q", [Hostile()]), ([("q", Hostile())],)]:
        assert wrapper(wrapped, Hostile(), args, {}) is sentinel
        assert wrapper(wrapped, Hostile(), (), {"top_k": Hostile()}) is sentinel


@pytest.mark.parametrize(
    "extra",
    [
        {"convert_to_tensor": True},
        {"apply_softmax": True},
        {"convert_to_numpy": False},
        {"top_k": 2, "return_documents": True},
    ],
)
def test_cross_encoder_rank_with_extra_keywords_records_the_candidate_count(
    otel: Otel, tiny_cross_encoder: Any, extra: dict[str, Any]
) -> None:
    """Keywords the visible signature lacks (taken by a deprecation shim) bind the rest."""
    import warnings

    from opentelemetry.instrumentation.utils import suppress_instrumentation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sentence-transformers' deprecation notices
        model = tiny_cross_encoder
        with suppress_instrumentation():  # what the user gets uninstrumented
            expected = model.rank("query", ["a", "bb", "ccc"], **extra)
        result = model.rank("query", ["a", "bb", "ccc"], **extra)
    assert [r["corpus_id"] for r in result] == [r["corpus_id"] for r in expected]
    attributes = dict(otel.span().attributes or {})
    assert attributes["gen_ai.rerank.candidate.count"] == 3
    assert sum(p.count for p in otel.metric_points("rag.rerank.candidates")) == 1


@given(
    args=st.lists(st.integers(), min_size=1, max_size=2),
    kwargs=st.dictionaries(st.sampled_from(["c", "zz", "extra"]), st.integers()),
)
def test_bind_arguments_keeps_what_fits_when_keywords_do_not(
    args: list[int], kwargs: dict[str, int]
) -> None:
    def fn(a: int, b: int = 0, *, c: int = 1) -> None: ...

    bound = _common.bind_arguments(fn, tuple(args), kwargs)
    assert bound["a"] == args[0]
    assert bound["b"] == (args[1] if len(args) > 1 else 0)
    assert bound["c"] == kwargs.get("c", 1)
    for name, value in kwargs.items():  # unknown keywords: by their own names
        assert bound[name] == value
