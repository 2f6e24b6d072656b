"""Pure extraction of span attributes from sentence-transformers calls.

The extractors take the call's bound arguments (or its result) and return ``(key, value)``
pairs (a tuple: one frame, where a generator is resumed per pair); ``None`` values are
skipped. They never touch a span, so they are tested table-style on their own. The writers
at the end (content, rerank summaries) are what the generic wrapper hands the span to: they
only call its ``record_*`` methods.
"""

from __future__ import annotations

import contextlib
import inspect
import operator
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, Final

from otel_rerank import semconv
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int, is_number, model_name_of
from otel_rerank.instrumentation._base import Start
from otel_rerank.instrumentation._common import (
    InstanceCache,
    sized_length,
)

try:  # the compiled one-query check, built when the build had a C compiler (hatch_build.py)
    from otel_rerank._speedups import one_query as _compiled_one_query
except ImportError:  # pure Python: the same answers, only slower
    _compiled_one_query = None  # type: ignore[assignment]

PROVIDER = "sentence_transformers"


_model_names = InstanceCache(model_name_of)


def model_name(instance: Any) -> str | None:
    """``gen_ai.request.model`` of a SentenceTransformer or CrossEncoder, computed once each."""
    name: str | None = _model_names.of(instance)
    return name


class _ModelFacts:
    """What the wrappers keep per model, in one entry: a call finds it for the span's start
    and again for the device.

    Each slot is replaced as a whole, so that a thread reading it never sees half of an
    update: ``start`` (``None`` until the first call); ``device_state``, ``(device, first
    parameter (held weakly: it never keeps weights alive), that parameter's device)`` or
    ``None`` when nothing is cached (see :func:`_device`); ``tokenizer_path``, ``(first
    module, its tokenizer)`` where ``max_seq_length`` reads its value, ``()`` for a model
    whose first module is not of that kind (read through the property, not looked for
    again), or ``None`` until the first call (see :func:`_max_length`).
    """

    __slots__ = ("device_state", "start", "tokenizer_path")

    def __init__(self, model: Any) -> None:
        self.start: Start | None = None
        self.device_state: tuple[str | None, weakref.ref[Any], Any] | None = None
        self.tokenizer_path: tuple[Any, ...] | None = None


#: A model's facts, which leave with it (a model that cannot be weakly referenced gets
#: fresh ones on every call, so nothing is cached for it).
_facts = InstanceCache(_ModelFacts)


def start(instance: Any, arguments: Mapping[str, Any]) -> Start:
    """The span's identity: the model's name (computed once per model)."""
    facts: _ModelFacts = _facts.of(instance)
    found = facts.start
    if found is None:
        found = facts.start = Start(model=model_name(instance))
    return found


def _read_device(instance: Any) -> str | None:
    device = getattr(instance, "device", None)
    return str(device) if device is not None else None


def _first_parameter(instance: Any) -> Any:
    parameters = getattr(instance, "parameters", None)
    if not callable(parameters):
        return None
    try:
        return next(iter(parameters()), None)
    except Exception:
        return None


def _device(instance: Any, facts: _ModelFacts | None = None) -> str | None:
    """``str(model.device)``, read again only when the model's first parameter moved
    (``facts``: the model's, when the caller has them already).

    ``model.device`` walks the module tree in sentence-transformers 6. Moving a model
    (``.to``, ``.cuda``, ``.cpu``, accelerate dispatch) changes its parameters' device in
    place, or replaces the parameters; either way the cached state no longer matches and
    the device is read again. A model that cannot be weakly referenced, or whose first
    parameter cannot, is read on every call.
    """
    if facts is None:
        facts = _facts.of(instance)
    state = facts.device_state
    if state is not None:
        device, parameter, parameter_device = state
        held = parameter()
        if held is not None and held.device == parameter_device:
            return device
    device = _read_device(instance)
    first = _first_parameter(instance)
    state = None
    if first is not None and hasattr(first, "device"):
        with contextlib.suppress(TypeError):  # a parameter that cannot be weakly referenced
            state = (device, weakref.ref(first), first.device)
    facts.device_state = state
    return device


def _max_length(instance: Any, facts: _ModelFacts | None = None) -> int | None:
    """``model.max_seq_length``: the first module's, read without indexing the model
    (``facts``: the model's, when the caller has them already).

    sentence-transformers' property reads ``self[0]``, and ``nn.Sequential.__getitem__``
    walks the module list in Python on every call. For a class that keeps both as the
    libraries define them, the first module is the first entry of ``_modules``; any other
    class (a subclass overriding either, or a model whose class was changed) reads the
    property itself. The value is read on every call: it is the tokenizer's
    ``model_max_length``, which any code can set (``model.max_seq_length = 256`` does).
    The way to it is kept per model (``_ModelFacts.tokenizer_path``) where the first module
    is sentence-transformers 6's ``Transformer`` over a tokenizer: that value is read
    straight from the tokenizer while the model's module ``"0"`` is still that module and
    its processor that tokenizer (after a forward pass, ~6 µs against ~15 through the two
    properties, each reading the processor).
    """
    cls = type(instance)
    plain = _plain_max_length.get(cls)
    if plain is None:
        plain = _plain_max_length[cls] = _reads_first_module(cls)
    if plain:
        modules = instance.__dict__.get("_modules")
        if modules:
            if facts is None:
                facts = _facts.of(instance)
            path = facts.tokenizer_path
            if path:
                first, tokenizer = path
                if modules.get("0") is first and first.__dict__.get("processor") is tokenizer:
                    value = tokenizer.model_max_length
                    return value if is_int(value) else None
            first = next(iter(modules.values()))
            value = getattr(first, "max_seq_length", None)
            if path is None or path:  # not looked for yet, or its module or tokenizer replaced
                facts.tokenizer_path = _tokenizer_path(modules, first)
            return value if is_int(value) else None
    value = getattr(instance, "max_seq_length", None)
    return value if is_int(value) else None


def _tokenizer_path(modules: Mapping[str, Any], first: Any) -> tuple[Any, ...]:
    """``(first, its tokenizer)`` when ``first`` is module ``"0"``, of a class whose
    ``max_seq_length`` is sentence-transformers 6's ``Transformer`` property (the
    tokenizer's ``model_max_length``, the tokenizer being the processor itself when it is
    one), over a processor that is a tokenizer; else ``()`` (read through the property)."""
    cls = type(first)
    plain = _plain_tokenizer_read.get(cls)
    if plain is None:
        plain = _plain_tokenizer_read[cls] = _reads_processor_tokenizer(cls)
    processor = first.__dict__.get("processor")
    if not plain or modules.get("0") is not first or not _is_tokenizer(processor):
        return ()
    return first, processor


def _reads_processor_tokenizer(cls: type) -> bool:
    return _property_from(cls, "max_seq_length", _ST_TRANSFORMER) and _property_from(
        cls, "tokenizer", _ST_TRANSFORMER
    )


def _property_from(cls: type, name: str, module: str) -> bool:
    """Whether ``cls.<name>`` is a property defined in ``module`` (looked up, not run)."""
    try:
        prop = inspect.getattr_static(cls, name)
    except AttributeError:
        return False
    return isinstance(prop, property) and getattr(prop.fget, "__module__", None) == module


def _is_tokenizer(processor: Any) -> bool:
    base = getattr(sys.modules.get("transformers"), "PreTrainedTokenizerBase", None)
    return isinstance(base, type) and isinstance(processor, base)


#: per module class: whether ``max_seq_length`` and ``tokenizer`` are sentence-transformers
#: 6's ``Transformer`` properties (classes, not instances: a few entries)
_plain_tokenizer_read: dict[type, bool] = {}
_ST_TRANSFORMER: Final = "sentence_transformers.base.modules.transformer"


#: per class: whether ``max_seq_length`` is sentence-transformers' own property over
#: ``nn.Sequential``'s indexing (classes, not instances: a few entries)
_plain_max_length: dict[type, bool] = {}


def _reads_first_module(cls: type) -> bool:
    if not _property_from(cls, "max_seq_length", _ST_BASE_MODEL):
        return False
    try:
        getitem = inspect.getattr_static(cls, "__getitem__")
    except AttributeError:
        return False
    return (
        getattr(getitem, "__qualname__", None) == "Sequential.__getitem__"
        and getattr(getitem, "__module__", None) == "torch.nn.modules.container"
    )


_ST_BASE_MODEL: Final = "sentence_transformers.base.model"


# -- embeddings ----------------------------------------------------------------------------
def encode_request(instance: Any, arguments: Mapping[str, Any]) -> Attributes:
    inputs = arguments.get("inputs", arguments.get("sentences"))
    count = 1 if isinstance(inputs, (str, bytes, dict)) else sized_length(inputs)
    device = arguments.get("device")
    return (
        (semconv.RAG_EMBEDDING_INPUT_COUNT, count),
        (semconv.RAG_BATCH_SIZE, _int_or_none(arguments.get("batch_size"))),
        (semconv.RAG_DEVICE, device if isinstance(device, str) else _device(instance)),
    )


def encode_response(result: Any) -> Attributes:
    shape = getattr(result, "shape", None)
    if shape is None and isinstance(result, list) and result:
        shape = getattr(result[0], "shape", None)
    if shape:
        return ((semconv.GEN_AI_EMBEDDINGS_DIMENSION_COUNT, int(shape[-1])),)
    return ()


def encode_texts(arguments: Mapping[str, Any]) -> list[Any]:
    """The texts embedded (content; written only when capture is on)."""
    inputs = arguments.get("inputs", arguments.get("sentences"))
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, Sequence) and not isinstance(inputs, bytes):
        return [x for x in inputs if isinstance(x, str)]
    return []


def write_encode_texts(call: StageSpan, arguments: Mapping[str, Any]) -> None:
    """Content writer: the texts embedded, as ``embedding.embeddings.{i}.embedding.text``."""
    call.record_documents(
        semconv.EMBEDDING_EMBEDDINGS, encode_texts(arguments), content_key=semconv.EMBEDDING_TEXT
    )


# -- rerank --------------------------------------------------------------------------------
def rerank_model_attributes(instance: Any, arguments: Mapping[str, Any]) -> Attributes:
    facts: _ModelFacts = _facts.of(instance)  # found once for both reads
    device = arguments.get("device")
    return (
        (semconv.RAG_BATCH_SIZE, _int_or_none(arguments.get("batch_size"))),
        (semconv.RAG_RERANK_MAX_LENGTH, _max_length(instance, facts)),
        (semconv.RAG_DEVICE, device if isinstance(device, str) else _device(instance, facts)),
    )


def rank_request(instance: Any, arguments: Mapping[str, Any]) -> Attributes:
    """``rank``: its ``top_k`` (``gen_ai.rerank.top_n``) and the model's attributes."""
    top = top_n(arguments)
    model = rerank_model_attributes(instance, arguments)
    if top is None:  # rank's default: no pair whose None the reader must drop
        return model
    return ((semconv.GEN_AI_RERANK_TOP_N, top), (semconv.RERANKER_TOP_K, top), *model)


def top_n(arguments: Mapping[str, Any]) -> int | None:
    """``rank``'s ``top_k`` (``gen_ai.rerank.top_n``) when it is an integer."""
    return _int_or_none(arguments.get("top_k"))


def predict_pairs(arguments: Mapping[str, Any]) -> Sequence[Any] | None:
    """The (query, document) pairs of a ``predict`` call, without consuming or copying them.

    ``predict`` takes one pair or a list of pairs; anything else (a generator, a dataset)
    gives ``None`` and is left untouched. The caller's list (or tuple) is returned as is,
    and never written.
    """
    inputs = arguments.get("inputs", arguments.get("sentences"))
    if not isinstance(inputs, (list, tuple)):
        return None
    if len(inputs) == 2 and not any(isinstance(x, (list, tuple)) for x in inputs):
        return [inputs]
    return inputs


def single_query(pairs: Sequence[Any]) -> tuple[bool, Any]:
    """``(True, query)`` when every pair has the same first element, else ``(False, None)``.

    Pairs are lists or tuples of two; the first elements are the same when they are one
    object or equal values of one type. Compiled (``otel_rerank._speedups.one_query``,
    when the build had a C compiler) for a list or tuple of plain lists or tuples; else
    one pass in Python, the reference the tests hold the compiled one to. (One Python loop,
    though it executes more bytecodes than three passes in C, ``map``/``set``/``all``:
    after a model's forward pass has evicted the CPU caches it costs a quarter of theirs,
    each bringing its own cold code, and warm it is faster too: 50 pairs, 3.3 µs against
    4.7.)
    """
    if _compiled_one_query is not None:
        found = _compiled_one_query(pairs)
        if found is not NotImplemented:
            return found
    if not pairs:
        return False, None
    first = pairs[0]
    if not isinstance(first, (list, tuple)) or len(first) != 2:
        return False, None
    query = first[0]
    for pair in pairs:
        kind = type(pair)
        if (kind is tuple or kind is list) and len(pair) == 2 and pair[0] is query:
            continue  # the usual pair: one query object repeated
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            return False, None
        other = pair[0]
        if other is query:
            continue
        if type(other) is not type(query):
            return False, None
        try:
            same = bool(other == query)
        except Exception:  # arrays and other values whose equality is not one bool
            return False, None
        if not same:
            return False, None
    return True, query


def predict_candidate_count(arguments: Mapping[str, Any]) -> int | None:
    """Pairs given to ``predict`` (``None`` for a generator or dataset: not read)."""
    pairs = predict_pairs(arguments)
    return len(pairs) if pairs is not None else None


def rank_candidate_count(arguments: Mapping[str, Any]) -> int | None:
    """Documents given to ``rank``."""
    return sized_length(arguments.get("documents"))


def rank_scores(result: Any, candidate_count: int | None) -> list[float] | None:
    """Scores in document order, rebuilt from ``rank``'s sorted result if it is complete."""
    if not isinstance(result, list) or candidate_count is None or len(result) != candidate_count:
        return None
    scores: list[float | None] = [None] * candidate_count
    for item in result:
        if not isinstance(item, Mapping):  # a subclass's own result shape: not ours to read
            return None
        index, score = item.get("corpus_id"), item.get("score")
        if not isinstance(index, int) or not 0 <= index < candidate_count:
            return None
        score = _float_or_none(score)
        if score is None:
            return None
        scores[index] = score
    if any(s is None for s in scores):
        return None
    return [s for s in scores if s is not None]


def _float_or_none(value: Any) -> float | None:
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # numpy / torch scalar
        value = value.item()
    return float(value) if is_number(value) else None


def _int_or_none(value: Any) -> int | None:
    """An integer argument (``top_k``, ``batch_size``) as an int, ``None`` for anything else
    (a bool included)."""
    if value is None or type(value) is int:  # the usual arguments, without a frame
        return value
    if isinstance(value, bool):
        return None
    try:  # an int subclass, numpy and torch integer scalars
        return operator.index(value)
    except Exception:
        return None


# -- writers (the generic wrapper hands them the span) -------------------------------------
def write_predict_content(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    """Content writer: ``predict``'s documents and, for one query, the query."""
    pairs = predict_pairs(arguments)
    if pairs is None:
        return
    documents = [p[1] if isinstance(p, (list, tuple)) and len(p) == 2 else None for p in pairs]
    call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, documents)
    one_query, query = single_query(pairs)
    if one_query:
        call.record_text(semconv.RERANKER_QUERY, query)


def predict_summary(
    call: StageSpan, arguments: Mapping[str, Any], result: Any, nested: Sequence[Any]
) -> None:
    """``predict``'s scores, when they belong to one query's candidate list.

    Per-query attributes (and a reranked order) mean nothing across queries.
    """
    pairs = predict_pairs(arguments)
    if pairs is not None and single_query(pairs)[0]:
        call.record_scores(result)  # read by float_list, once


def write_rank_content(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    """Content writer: ``rank``'s documents and query."""
    documents = arguments.get("documents")
    if isinstance(documents, (list, tuple)):
        call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, documents)
    call.record_text(semconv.RERANKER_QUERY, arguments.get("query"))


def rank_summary(
    call: StageSpan, arguments: Mapping[str, Any], result: Any, nested: Sequence[Any]
) -> None:
    """``rank``'s scores in document order: from the ``predict`` it ran (``nested``, every
    score even with ``top_k``, which Kendall's tau needs), else rebuilt from its result."""
    if len(nested) == 1:  # predict's own result, read by record_scores
        scores = nested[0]
    else:
        scores = rank_scores(result, sized_length(arguments.get("documents")))
    call.record_scores(scores, top_n=top_n(arguments))  # rank returns top_k of them
