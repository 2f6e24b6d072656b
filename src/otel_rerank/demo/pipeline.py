"""The demo's RAG pipeline: embed, search, rerank, answer — plain library calls, no tracing code.

This is the part of an application that ``import otel_rerank.auto`` instruments without a
change: :meth:`RagPipeline.answer` calls ``SentenceTransformer.encode`` (an embeddings
span), ``faiss.Index.search`` (a retrieval span), a cross-encoder through
:class:`otel_rerank.ShadowReranker` (a rerank span, or a linked shadow span), and
``openai``'s ``chat.completions.create`` (a chat span). The only otel-rerank name in it is
``ShadowReranker``, which is where a reranker goes in any application that wants
``OTEL_RERANK_MODE`` (``off`` / ``shadow`` / ``serve``) to decide, per call, whether the
reranker's order is served.

The four stage spans become children of whatever span is current when ``answer`` runs —
the server span of a web framework, or a root span the caller starts (the example service
and ``otel-rerank demo`` each start one per request).

:func:`build_pipeline` assembles it from local models and the standard-library corpus
(:mod:`otel_rerank.demo.corpus`); the LLM is the endpoint that ``OPENAI_BASE_URL`` /
``OPENAI_API_KEY`` configure, or the loopback stand-in (:mod:`otel_rerank.demo.llm_standin`)
when neither is set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from opentelemetry import trace

from otel_rerank import models
from otel_rerank.demo.corpus import DEFAULT_PASSAGES, Corpus, Passage, load_corpus
from otel_rerank.demo.llm_standin import LLMStandIn
from otel_rerank.shadow import ShadowReranker, current_mode

DEFAULT_K: Final = 20
DEFAULT_TOP_N: Final = 3
DEFAULT_OPENAI_MODEL: Final = "gpt-4o-mini"
EMBEDDER_NAME: Final = "all-MiniLM-L6-v2"
_SYSTEM_PROMPT: Final = (
    "You answer questions about the Python standard library. Use only the numbered "
    "passages, and quote the one you rely on."
)


@dataclass(frozen=True)
class Answer:
    """What one request returns.

    Attributes:
        query: the question asked.
        answer: the LLM's reply.
        passages: the passages the answer was built from, in the order served.
        retrieved: every candidate's id, in retrieval's order (best first).
        mode: the ``OTEL_RERANK_MODE`` in force for this request.
        trace_id: the request's trace id (32 hex digits), or ``None`` when not traced.
    """

    query: str
    answer: str
    passages: list[Passage]
    retrieved: list[int]
    mode: str
    trace_id: str | None


def prompt_messages(query: str, passages: Sequence[Passage]) -> list[dict[str, str]]:
    """The chat messages: the question, then the served passages numbered from 1."""
    numbered = "\n".join(f"[{i}] {p.content}" for i, p in enumerate(passages, 1))
    return [
        {"role": "system", "content": _SYSTEM_PROMPT},
        {"role": "user", "content": f"Question: {query}\n\nPassages:\n{numbered}"},
    ]


def _current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


@dataclass
class RagPipeline:
    """Retrieve ``k`` candidates, let the reranker order them, answer from the top ``top_n``.

    Args:
        embedder: a ``SentenceTransformer`` (``encode``).
        index: a faiss index over the passages' unit-length embeddings (inner product).
        passages: the passages; row ``i`` of the index is ``passages[i]``.
        reranker: a :class:`ShadowReranker` around the cross-encoder.
        llm: an ``openai.OpenAI`` client.
        llm_model: the chat model to ask.
        k: candidates retrieved (and reranked).
        top_n: served passages given to the LLM.
        stream: ask the LLM for a streamed reply.
        closers: called by :meth:`close` (the LLM stand-in's ``stop``, for one).
    """

    embedder: Any
    index: Any
    passages: list[Passage]
    reranker: ShadowReranker[Passage]
    llm: Any
    llm_model: str
    k: int = DEFAULT_K
    top_n: int = DEFAULT_TOP_N
    stream: bool = False
    closers: list[Any] = field(default_factory=list)

    def retrieve(self, query: str) -> list[Passage]:
        """The ``k`` nearest passages to ``query``, best first."""
        vector = self.embedder.encode(
            [query], normalize_embeddings=True, convert_to_numpy=True
        ).astype("float32")
        _scores, ids = self.index.search(vector, self.k)
        return [self.passages[i] for i in ids[0] if i >= 0]

    def chat(self, query: str, passages: Sequence[Passage]) -> str:
        """Ask the LLM to answer ``query`` from ``passages``."""
        messages = prompt_messages(query, passages)
        if not self.stream:
            reply = self.llm.chat.completions.create(model=self.llm_model, messages=messages)
            return str(reply.choices[0].message.content or "")
        parts = []
        stream = self.llm.chat.completions.create(
            model=self.llm_model,
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
        return "".join(parts)

    def answer(self, query: str) -> Answer:
        """Run the whole request: retrieve, rerank (per the mode), answer."""
        mode = current_mode(self.reranker.mode)
        candidates = self.retrieve(query)
        served = self.reranker(query, candidates)
        context = served[: self.top_n]
        reply = self.chat(query, context)
        return Answer(
            query=query,
            answer=reply,
            passages=list(context),
            retrieved=[p.id for p in candidates],
            mode=mode,
            trace_id=_current_trace_id(),
        )

    def close(self, timeout: float = 30.0) -> None:
        """Finish queued shadow runs (up to ``timeout`` s) and stop what the pipeline started."""
        self.reranker.close(timeout=timeout)
        for close in reversed(self.closers):
            close()
        self.closers.clear()


def flat_index(embeddings: Any) -> Any:
    """An exact inner-product faiss index over unit-length ``embeddings``."""
    import faiss

    index = faiss.IndexFlatIP(int(embeddings.shape[1]))
    index.add(embeddings)
    return index


def openai_client_from_env() -> tuple[Any, str, LLMStandIn | None]:
    """The LLM client: the configured endpoint, else a started loopback stand-in.

    A real endpoint is used when ``OPENAI_BASE_URL`` or ``OPENAI_API_KEY`` is set (the
    model is ``$OPENAI_MODEL``, default ``gpt-4o-mini``); otherwise the stand-in.

    Returns:
        ``(client, model, stand-in or None)``; the caller stops the stand-in.
    """
    import openai

    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        model = os.environ.get("OPENAI_MODEL") or DEFAULT_OPENAI_MODEL
        return openai.OpenAI(), model, None
    return standin_client()


def standin_client() -> tuple[Any, str, LLMStandIn]:
    """A started loopback stand-in and an ``openai`` client pointed at it."""
    import openai

    from otel_rerank.demo.llm_standin import MODEL

    standin = LLMStandIn().start()
    client = openai.OpenAI(base_url=standin.base_url, api_key="not-needed", max_retries=0)
    return client, MODEL, standin


@dataclass
class Setup:
    """What :func:`build_pipeline` loaded, for the caller to report."""

    corpus: Corpus
    embedder_name: str
    cross_encoder_path: Path
    proxy: bool
    llm_base_url: str
    #: What the reranker's scores need said with them (the proxy's, or an embedding
    #: model's untrained head): ``None`` for a real cross-encoder.
    notice: str | None = None


def build_pipeline(
    *,
    k: int = DEFAULT_K,
    top_n: int = DEFAULT_TOP_N,
    cross_encoder: str | os.PathLike[str] | None = None,
    max_passages: int = DEFAULT_PASSAGES,
    mode: str | None = None,
    sample_rate: float = 1.0,
    use_env_llm: bool = True,
    stream: bool = False,
    progress: bool = False,
) -> tuple[RagPipeline, Setup]:
    """Load the models and corpus (building the cache on first use) and assemble a pipeline.

    Args:
        k: candidates retrieved and reranked per request.
        top_n: passages given to the LLM.
        cross_encoder: a local cross-encoder directory; default: the proxy
            (:func:`otel_rerank.models.proxy_cross_encoder_path`).
        max_passages: corpus size.
        mode: fix the reranker's mode; ``None`` reads ``OTEL_RERANK_MODE`` on every call.
        sample_rate: share of requests shadow-run in ``shadow`` mode.
        use_env_llm: use the endpoint ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` configure;
            ``False`` always uses the loopback stand-in.
        stream: stream the LLM's replies.
        progress: show a progress bar while the corpus is embedded (first run only).

    Raises:
        otel_rerank.models.ModelUnavailableError: a model cannot be found or loaded offline
            (a directory without a ``config.json``, or with a broken one), or the cache
            directory cannot be written.
    """
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    from sentence_transformers import SentenceTransformer

    embedder_path = models.embedding_model_path()
    ce_path = Path(cross_encoder) if cross_encoder else models.proxy_cross_encoder_path()
    if not (ce_path / "config.json").is_file():
        raise models.ModelUnavailableError(f"no cross-encoder model in {ce_path}")
    ranker = models.load_cross_encoder(ce_path)
    embedder = SentenceTransformer(str(embedder_path))
    corpus = load_corpus(embedder, EMBEDDER_NAME, max_passages=max_passages, progress=progress)
    client, llm_model, standin = openai_client_from_env() if use_env_llm else standin_client()
    reranker: ShadowReranker[Passage] = ShadowReranker(
        ranker, sample_rate=sample_rate, text=lambda p: p.content, mode=mode
    )
    pipeline = RagPipeline(
        embedder=embedder,
        index=flat_index(corpus.embeddings),
        passages=corpus.passages,
        reranker=reranker,
        llm=client,
        llm_model=llm_model,
        k=min(k, len(corpus.passages)),
        top_n=top_n,
        stream=stream,
        closers=[standin.stop] if standin is not None else [],
    )
    with suppress_instrumentation():  # first calls pay one-off initialisation: not requests
        embedder.encode(["warm-up"], convert_to_numpy=True)
        ranker.predict([("warm-up", corpus.passages[0].content)])
    setup = Setup(
        corpus=corpus,
        embedder_name=EMBEDDER_NAME,
        cross_encoder_path=ce_path,
        proxy=models.is_proxy(ce_path),
        llm_base_url=str(client.base_url).rstrip("/"),
        notice=models.PROXY_NOTICE
        if models.is_proxy(ce_path)
        else models.UNTRAINED_HEAD_NOTICE
        if models.has_untrained_head(ranker)
        else None,
    )
    return pipeline, setup
