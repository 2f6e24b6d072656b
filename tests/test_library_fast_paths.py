"""The per-call fast paths of the library wrappers give the same results as the slow ones.

Argument binding planned once per function must bind exactly as ``Signature.bind`` +
``apply_defaults`` did; the per-model device cache must see a model move and must never
keep a model alive; and a call that records nothing (suppressed, or no SDK) must not read
its arguments at all.
"""

from __future__ import annotations

import gc
import inspect
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest
import torch
from opentelemetry.instrumentation.utils import suppress_instrumentation
from qdrant_client import QdrantClient, models

from otel_rerank import _telemetry, semconv
from otel_rerank.instrumentation import _common
from otel_rerank.instrumentation.sentence_transformers import _attributes as st_attrs

from .conftest import Otel
from .test_cohere import DOCS, QUERY, _client_v2, _MockCohere


# -- argument binding ----------------------------------------------------------------------
def _plain(a: Any, b: Any = 2, *, c: Any = 3) -> None: ...
def _required_keyword(a: Any, *, c: Any) -> None: ...
def _var_keyword(a: Any, b: Any = 2, **kwargs: Any) -> None: ...
def _var_positional(a: Any, *rest: Any, d: Any = 4) -> None: ...
def _positional_only(a: Any, /, b: Any = 2, **kwargs: Any) -> None: ...


_CALLS: list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = [
    (_plain, (1,), {}),
    (_plain, (1, 5), {"c": 6}),
    (_plain, (), {"a": 1, "b": 5}),
    (_plain, (1,), {"a": 1}),  # given twice: the general path decides
    (_plain, (1, 2, 3), {}),  # too many positionals
    (_plain, (), {}),  # a required one missing
    (_plain, (1,), {"zzz": 9}),  # a keyword the signature does not take
    (_required_keyword, (1,), {"c": 2}),
    (_required_keyword, (1,), {}),
    (_var_keyword, (1,), {"convert_to_tensor": True, "b": 7}),
    (_var_keyword, (), {"a": 1, "kwargs": 5}),
    (_var_positional, (1,), {}),
    (_var_positional, (1, 2, 3), {"d": 0}),
    (_positional_only, (1,), {"x": 1}),
    (_positional_only, (1,), {"a": 9}),  # lands in **kwargs, not in ``a``
    (dict.get, ({}, "k"), {}),  # a builtin whose signature may not be readable
]


@pytest.mark.parametrize(("fn", "args", "kwargs"), _CALLS)
def test_planned_binding_matches_signature_bind(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    assert _common.bind_arguments(fn, args, kwargs) == _common._bind_general(fn, args, kwargs)


def test_bound_methods_bind_without_self() -> None:
    class Model:
        def encode(self, inputs: Any, batch_size: int = 32, **kwargs: Any) -> None: ...

    bound = _common.bind_arguments(Model().encode, (["a"],), {"convert_to_tensor": True})
    assert bound == {"inputs": ["a"], "batch_size": 32, "convert_to_tensor": True}


def test_usual_call_does_not_use_signature_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Signature.bind on the fast path")

    _common.bind_arguments(_plain, (0,), {})  # the plan is made once, here
    monkeypatch.setattr(inspect.Signature, "bind", refuse)
    assert _common.bind_arguments(_plain, (1,), {"c": 4}) == {"a": 1, "b": 2, "c": 4}


# -- the device cache ----------------------------------------------------------------------
class _Model(torch.nn.Module):
    """A module whose ``device`` is read the way sentence-transformers reads it."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.device_reads = 0

    @property
    def device(self) -> torch.device:
        self.device_reads += 1
        return next(self.parameters()).device


def test_device_is_read_once_per_model() -> None:
    model = _Model()
    assert st_attrs._device(model) == "cpu"
    assert st_attrs._device(model) == "cpu"
    assert model.device_reads == 1


def test_a_move_is_seen() -> None:
    model = _Model()
    assert st_attrs._device(model) == "cpu"
    model.to("meta")
    assert st_attrs._device(model) == "meta"
    assert model.device_reads == 2


def test_replaced_parameters_are_seen() -> None:
    model = _Model()
    assert st_attrs._device(model) == "cpu"
    model.linear = torch.nn.Linear(2, 2, device="meta")  # the cached parameter is freed
    gc.collect()
    assert st_attrs._device(model) == "meta"


def test_the_cache_keeps_no_model_alive() -> None:
    model = _Model()
    st_attrs._device(model)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_an_object_that_cannot_be_weakly_referenced_is_read_every_time() -> None:
    class Slotted:
        __slots__ = ("device",)

        def __init__(self, device: str) -> None:
            self.device = device

    model = Slotted("cpu")
    with pytest.raises(TypeError):
        weakref.ref(model)
    assert st_attrs._device(model) == "cpu"
    model.device = "cuda:1"
    assert st_attrs._device(model) == "cuda:1"


def test_a_cross_encoder_moved_after_a_call_records_its_new_device(
    otel: Otel, tiny_cross_encoder_path: Path
) -> None:
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(tiny_cross_encoder_path))  # its own: it is moved below
    pairs = [("q", "a"), ("q", "b")]
    model.predict(pairs)
    assert otel.span().attributes[semconv.RAG_DEVICE] == "cpu"
    otel.exporter.clear()
    model.to("meta")
    with pytest.raises(Exception):  # noqa: B017 - a meta model cannot compute; the span stays
        model.predict(pairs)
    assert otel.span().attributes[semconv.RAG_DEVICE] == "meta"


# -- nothing recorded: nothing read --------------------------------------------------------
@pytest.fixture
def binding_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Argument bindings a wrapper asks for: each function's first (the plans are cleared
    for the test, and a binding plans its function when it has none) and every one that
    takes the general path."""
    calls: list[Any] = []
    plan, general = _common._plan, _common._bind_general
    monkeypatch.setattr(_common, "_plans", {})

    def counting_plan(fn: Any) -> Any:
        calls.append(fn)
        return plan(fn)

    def counting_general(fn: Any, *rest: Any) -> Any:
        calls.append(fn)
        return general(fn, *rest)

    monkeypatch.setattr(_common, "_plan", counting_plan)
    monkeypatch.setattr(_common, "_bind_general", counting_general)
    return calls


@pytest.fixture(params=["suppressed", "no SDK"])
def nothing_records(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "no SDK":
        monkeypatch.setattr(_telemetry, "current", lambda: None)
        yield request.param
    else:
        with suppress_instrumentation():
            yield request.param


@pytest.mark.usefixtures("otel")
def test_qdrant_reads_no_arguments_when_nothing_records(
    nothing_records: str, binding_calls: list[Any]
) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance="Cosine"))
    client.upsert("c", points=[models.PointStruct(id=1, vector=[1.0, 0.0])])
    assert client.query_points("c", query=[1.0, 0.0], limit=1).points[0].id == 1
    client.close()
    assert binding_calls == []


def test_a_recorded_call_does_bind(otel: Otel, binding_calls: list[Any]) -> None:
    client = QdrantClient(":memory:")
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance="Cosine"))
    client.query_points("c", query=[1.0, 0.0], limit=1)
    client.close()
    assert binding_calls  # the counting above sees binding when there is any
    assert otel.span().attributes[semconv.GEN_AI_RETRIEVAL_TOP_K] == 1


@pytest.mark.usefixtures("otel")
def test_chroma_reads_no_arguments_when_nothing_records(
    nothing_records: str, binding_calls: list[Any]
) -> None:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("fast-paths", embedding_function=None)
    collection.upsert(ids=["a"], embeddings=[[1.0, 0.0]], documents=["x"])
    assert collection.query(query_embeddings=[[1.0, 0.0]], n_results=1)["ids"] == [["a"]]
    client.delete_collection("fast-paths")
    assert binding_calls == []


@pytest.mark.usefixtures("otel")
def test_cohere_reads_no_arguments_when_nothing_records(
    nothing_records: str, binding_calls: list[Any]
) -> None:
    response = _client_v2(_MockCohere()).rerank(model="rerank-v3.5", query=QUERY, documents=DOCS)
    assert response.results[0].index == 1
    assert binding_calls == []


@pytest.mark.usefixtures("otel")
def test_faiss_reads_no_arguments_when_nothing_records(
    nothing_records: str, binding_calls: list[Any]
) -> None:
    index = faiss.IndexFlatIP(2)
    index.add(np.eye(2, dtype=np.float32))
    _, labels = index.search(np.array([[1.0, 0.0]], dtype=np.float32), 1)
    assert labels[0][0] == 0
    assert binding_calls == []


def test_a_sampled_out_span_binds_no_arguments(binding_calls: list[Any]) -> None:
    """faiss's span is a leaf, made when the call ends: under a request span a parent-based
    sampler dropped, nothing of the call is read. Without a parent, under a sampler that
    may drop a root, the span starts first, and a dropped one reads nothing either."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    from .conftest import make_otel

    sampled_out = make_otel(sampler=ParentBased(ALWAYS_OFF))
    sampled_out.instrument()
    try:
        index = faiss.IndexFlatIP(2)
        index.add(np.eye(2, dtype=np.float32))
        query = np.array([[1.0, 0.0]], dtype=np.float32)
        tracer = sampled_out.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("request") as request:
            assert not request.get_span_context().trace_flags.sampled
            index.search(query, 1)
        assert binding_calls == []
        index.search(query, 1)  # a root span its sampler drops before anything is read
        assert binding_calls == []
        assert sampled_out.spans() == []
        points = sampled_out.metric_points(semconv.METRIC_OPERATION_DURATION)
        assert sum(point.count for point in points) == 2  # both still timed
    finally:
        import otel_rerank

        otel_rerank.uninstrument()
        sampled_out.tracer_provider.shutdown()
        sampled_out.meter_provider.shutdown()


# -- the per-instance cache ----------------------------------------------------------------
class _Unhashable:
    """Like a pydantic model (chroma's Collection): ``__eq__`` without ``__hash__``."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unhashable)

    __hash__ = None  # type: ignore[assignment]


def test_instance_cache_keys_unhashable_instances_by_identity() -> None:
    computed: list[int] = []  # ids: holding the instances would keep them alive
    cache = _common.InstanceCache(lambda instance: computed.append(id(instance)) or len(computed))
    first, second = _Unhashable(), _Unhashable()  # equal, yet two instances
    assert cache.of(first) == cache.of(first) == 1
    assert cache.of(second) == 2
    ref = weakref.ref(first)
    del first
    gc.collect()
    assert ref() is None  # the cache keeps no instance alive
    assert len(cache._by_identity) == 1  # and forgets the dead one
    cache.discard(second)
    assert cache.of(second) == 3


def test_instance_cache_computes_every_time_what_it_cannot_refer_to_weakly() -> None:
    computed: list[Any] = []
    cache = _common.InstanceCache(lambda instance: computed.append(instance) or len(computed))
    value = [1, 2]  # unhashable and not weak-referenceable
    assert (cache.of(value), cache.of(value)) == (1, 2)


class _EqualByValue:
    """Hashable and equal by value: two equal clients are still two instances."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _EqualByValue) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


def test_instance_cache_keys_equal_instances_apart() -> None:
    cache = _common.InstanceCache(lambda instance: object())
    first, second = _EqualByValue("c"), _EqualByValue("c")
    assert cache.of(first) is cache.of(first)
    assert cache.of(second) is not cache.of(first)
    kept = cache.of(second)
    cache.discard(first)  # forgets that instance only
    assert cache.of(second) is kept


def test_a_model_whose_name_cannot_be_read_still_records_its_device() -> None:
    # The device shares the model's cache entry with the span's start, not its computation.
    class Nameless(_Model):
        @property
        def model_card_data(self) -> Any:
            raise RuntimeError("no card")

    model = Nameless()
    assert st_attrs._device(model) == "cpu"
    with pytest.raises(RuntimeError):
        st_attrs.start(model, {})
    assert st_attrs._device(model) == "cpu"
    assert model.device_reads == 1


def test_the_model_entry_goes_with_the_model() -> None:
    model = _Model()
    st_attrs._device(model)
    key = id(model)
    assert key in st_attrs._facts._by_identity
    del model
    gc.collect()
    assert key not in st_attrs._facts._by_identity
