"""Pure extraction of span attributes from cohere ``rerank`` calls (v1 and v2 APIs).

A rerank request carries a query, the candidate documents (strings, or in v1 also dicts
with a ``text`` field) and an optional ``top_n``; the response lists results
``{index, relevance_score}`` best first, only ``top_n`` of them when it is given. The
functions here turn those into ``(key, value)`` pairs and score lists without touching a
span. cohere's generated client marks omitted arguments with ``...`` (Ellipsis); those are
treated as not given. The API key lives in the client and is never read here. The writers
at the end (content, the rerank summary) only call the span's ``record_*`` methods.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from otel_rerank import _rerank, semconv
from otel_rerank._safe import guard
from otel_rerank._span import Attributes, StageSpan
from otel_rerank._values import is_int, is_number
from otel_rerank.instrumentation._base import Start
from otel_rerank.instrumentation._common import InstanceCache, server_from_url, sized_length

PROVIDER = "cohere"


def model(arguments: Mapping[str, Any]) -> str | None:
    value = arguments.get("model")
    return value if isinstance(value, str) and value else None


def candidate_count(arguments: Mapping[str, Any]) -> int | None:
    return sized_length(arguments.get("documents"))


def request(client: Any, arguments: Mapping[str, Any]) -> Attributes:
    top_n = arguments.get("top_n")
    if is_int(top_n):
        yield semconv.GEN_AI_RERANK_TOP_N, top_n
        yield semconv.RERANKER_TOP_K, top_n
    max_tokens = arguments.get("max_tokens_per_doc")  # v2: tokens kept per document
    if is_int(max_tokens):
        yield semconv.RAG_RERANK_MAX_LENGTH, max_tokens


def server(instance: Any) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of the API the client talks to.

    ``api.cohere.com:443`` unless configured otherwise; given to the span at its start, so
    a sampler sees them.
    """
    wrapper = getattr(instance, "_client_wrapper", None)
    if wrapper is None:
        wrapper = getattr(getattr(instance, "_raw_client", None), "_client_wrapper", None)
    get_base_url = getattr(wrapper, "get_base_url", None)
    if not callable(get_base_url):
        return {}
    base_url = get_base_url()
    return server_from_url(base_url) if isinstance(base_url, str) else {}


class _ClientStarts:
    """A client's server (its base URL does not change: read once) and its span start for
    each model it is asked for."""

    __slots__ = ("by_model", "server")

    def __init__(self, client: Any) -> None:
        self.server: dict[str, Any] | None = guard("cohere server")(server)(client)
        self.by_model: dict[str | None, Start] = {}


_clients = InstanceCache(_ClientStarts)


def start(client: Any, arguments: Mapping[str, Any]) -> Start:
    """The span's identity: the model (an argument) and the API's server; a CLIENT span.

    Built once per client and model.
    """
    name = model(arguments)
    known: _ClientStarts = _clients.of(client)
    found = known.by_model.get(name)
    if found is None:
        found = Start(model=name, kind=SpanKind.CLIENT, attributes=known.server)
        if len(known.by_model) < 64:  # bounded: model names are the caller's
            known.by_model[name] = found
    return found


_INDEX = operator.attrgetter("index")
_SCORE = operator.attrgetter("relevance_score")
_INTS: Final = frozenset({int})
_FLOATS: Final = frozenset({float})


def _columns(response: Any) -> tuple[list[int], list[float]] | None:
    """The results' indexes and scores, in the order returned; ``None`` unless every
    result has an integer index and a numeric score."""
    items = getattr(response, "results", None)
    if type(items) is not list and not isinstance(items, Sequence):
        return None
    try:  # read in C (attrgetter) and checked in bulk: the usual response costs no loop
        indexes = list(map(_INDEX, items))
        scores = list(map(_SCORE, items))
    except AttributeError:
        return None
    if not set(map(type, indexes)) <= _INTS and not all(isinstance(i, int) for i in indexes):
        return None
    if not set(map(type, scores)) <= _FLOATS:
        if not all(map(is_number, scores)):
            return None
        scores = list(map(float, scores))
    return indexes, scores


def response(result: Any) -> Attributes:
    response_id = getattr(result, "id", None)
    if isinstance(response_id, str):
        yield semconv.GEN_AI_RESPONSE_ID, response_id


def document_texts(arguments: Mapping[str, Any]) -> list[str | None]:
    """The documents' text (content; written only when capture is on)."""
    documents = arguments.get("documents")
    if not isinstance(documents, Sequence) or isinstance(documents, (str, bytes)):
        return []
    return [_text(doc) for doc in documents]


def _text(document: Any) -> str | None:
    if isinstance(document, str):
        return document
    if isinstance(document, Mapping):
        text = document.get("text")
        if isinstance(text, str):
            return text
        return json.dumps(document, default=str, ensure_ascii=False, sort_keys=True)
    text = getattr(document, "text", None)
    return text if isinstance(text, str) else None


# -- writers (the generic wrapper hands them the span) -------------------------------------
def write_query(call: StageSpan, arguments: Mapping[str, Any]) -> None:
    """Content writer: the query."""
    call.record_text(semconv.RERANKER_QUERY, arguments.get("query"))


def write_documents(call: StageSpan, arguments: Mapping[str, Any], result: Any) -> None:
    """Content writer: the documents' text."""
    call.record_documents(semconv.RERANKER_INPUT_DOCUMENTS, document_texts(arguments))


def summary(
    call: StageSpan, arguments: Mapping[str, Any], result: Any, nested: Sequence[Any]
) -> None:
    """Top score, top-1 change and (when every document was scored) Kendall's tau, and the
    reranked list as the API returned it (``top_n`` of the candidates when given)."""
    columns = _columns(result)
    if columns is None:
        return
    indexes, scores = columns
    count = candidate_count(arguments)
    # Computed whole, then set (the wrapper runs this under its guard): a failure sets none.
    found: dict[str, AttributeValue] | None = None
    if count is not None and len(indexes) == count:
        # Every document scored: the usual response is its ranking, counted as returned;
        # else (a tie, whose order the API chose) the summary of the scores in document
        # order. The list written is the API's own either way: no ranking is sorted here.
        found = _rerank.ranking_summary_attributes(indexes, scores)
        if found is None:
            in_document_order = _in_document_order(indexes, scores, count)
            if in_document_order is not None:
                found = _rerank.summary_attributes(in_document_order)
    if found is None and scores:  # top_n cut the list (or an odd one): no tau
        top = max(scores)
        best = scores.index(top)  # the first among ties (max keeps the first of equals)
        found = {
            semconv.RAG_RERANK_TOP_SCORE: top,
            semconv.RAG_RERANK_TOP1_CHANGED: indexes[best] != 0,
        }
    for key, value in (found or {}).items():
        call.set(key, value)
    call.record_ranked_columns(indexes, scores)


def _in_document_order(
    indexes: list[int], scores: list[float], count: int | None
) -> list[float] | None:
    """Every document's score in the order the documents were given, from the results'
    columns; ``None`` unless they score each of the ``count`` documents exactly once (with
    ``top_n`` below the document count the order of the unreturned rest is unknown, so
    Kendall's tau cannot be computed)."""
    if count is None or len(indexes) != count:
        return None
    if sorted(indexes) == list(range(count)):  # a permutation: each document once
        in_order = [0.0] * count
        for index, score in zip(indexes, scores, strict=True):
            in_order[index] = score
        return in_order
    return None
