"""Every span and metric name and attribute key otel-rerank writes, in one place.

Keys come from three vocabularies. The OpenTelemetry GenAI semantic conventions
(``gen_ai.*``, including the ``gen_ai.rerank.*`` keys proposed for reranking) are used
wherever they define a key, so generic GenAI dashboards work. OpenInference's keys
(``openinference.span.kind``, ``reranker.*``, ``retrieval.documents.*``) are added so Arize
Phoenix renders the spans natively. Everything else lives in the project's own ``rag.*``
namespace. Instrumentations import names from here and never spell a key inline, so a
rename is a one-line change and a grep shows every use.
"""

from __future__ import annotations

from typing import Final

# -- GenAI semantic conventions -------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_RERANK_CANDIDATE_COUNT: Final = "gen_ai.rerank.candidate.count"
GEN_AI_RERANK_TOP_N: Final = "gen_ai.rerank.top_n"
# Content, written only when capture is on (see otel_rerank._config).
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"

ERROR_TYPE: Final = "error.type"
DB_SYSTEM_NAME: Final = "db.system.name"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"

# -- OpenInference (Arize Phoenix) ------------------------------------------------------
OPENINFERENCE_SPAN_KIND: Final = "openinference.span.kind"
RERANKER_QUERY: Final = "reranker.query"
RERANKER_MODEL_NAME: Final = "reranker.model_name"
RERANKER_TOP_K: Final = "reranker.top_k"
RERANKER_INPUT_DOCUMENTS: Final = "reranker.input_documents"
RERANKER_OUTPUT_DOCUMENTS: Final = "reranker.output_documents"
RETRIEVAL_DOCUMENTS: Final = "retrieval.documents"
EMBEDDING_MODEL_NAME: Final = "embedding.model_name"
EMBEDDING_EMBEDDINGS: Final = "embedding.embeddings"
INPUT_VALUE: Final = "input.value"
OUTPUT_VALUE: Final = "output.value"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_INPUT_MESSAGES: Final = "llm.input_messages"
LLM_OUTPUT_MESSAGES: Final = "llm.output_messages"
# Suffixes under a document prefix: f"{prefix}.{i}.{DOCUMENT_CONTENT}".
DOCUMENT_CONTENT: Final = "document.content"
DOCUMENT_SCORE: Final = "document.score"
DOCUMENT_ID: Final = "document.id"
EMBEDDING_TEXT: Final = "embedding.text"
MESSAGE_ROLE: Final = "message.role"
MESSAGE_CONTENT: Final = "message.content"

# -- otel-rerank's own namespace --------------------------------------------------------
RAG_EMBEDDING_INPUT_COUNT: Final = "rag.embedding.input_count"
RAG_BATCH_SIZE: Final = "rag.batch_size"
RAG_DEVICE: Final = "rag.device"
RAG_RETRIEVAL_RETURNED_COUNT: Final = "rag.retrieval.returned_count"
RAG_RETRIEVAL_TOP_SCORE: Final = "rag.retrieval.top_score"
RAG_RETRIEVAL_QUERY_COUNT: Final = "rag.retrieval.query_count"
RAG_RERANK_MAX_LENGTH: Final = "rag.rerank.max_length"
RAG_RERANK_TOP_SCORE: Final = "rag.rerank.top_score"
RAG_RERANK_TOP1_CHANGED: Final = "rag.rerank.top1_changed"
RAG_RERANK_KENDALL_TAU: Final = "rag.rerank.kendall_tau"
RAG_RERANK_SHADOW: Final = "rag.rerank.shadow"
RAG_LLM_TIME_TO_FIRST_CHUNK: Final = "rag.llm.time_to_first_chunk"
RAG_CONTENT_TRUNCATED: Final = "rag.content.truncated"

# -- Stage vocabulary -------------------------------------------------------------------
OPERATION_EMBEDDINGS: Final = "embeddings"
OPERATION_RETRIEVAL: Final = "retrieval"
OPERATION_RERANK: Final = "rerank"
OPERATION_CHAT: Final = "chat"

KIND_EMBEDDING: Final = "EMBEDDING"
KIND_RETRIEVER: Final = "RETRIEVER"
KIND_RERANKER: Final = "RERANKER"
KIND_LLM: Final = "LLM"

# -- Metrics ------------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_RERANK_CANDIDATES: Final = "rag.rerank.candidates"
METRIC_SHADOW_DROPPED: Final = "rag.shadow.dropped"

#: Prometheus names of the duration histogram, as both the collector's Prometheus exporter
#: and the Python ``PrometheusMetricReader`` spell them (unit ``s`` becomes ``_seconds``).
PROMETHEUS_DURATION_BUCKET: Final = "gen_ai_client_operation_duration_seconds_bucket"
PROMETHEUS_DURATION_COUNT: Final = "gen_ai_client_operation_duration_seconds_count"

#: Latency budgets the docs and alert rules talk about, in seconds. Each is a bucket
#: boundary below, so "share of calls slower than the budget" is an exact ratio of two
#: cumulative bucket counts, not an interpolation.
DOCUMENTED_BUDGETS_S: Final = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0)

#: Bucket boundaries of ``gen_ai.client.operation.duration``, in seconds. Dense between
#: 50 ms and 5 s (where rerank and end-to-end p95 alerts live), sparse outside it. The
#: collector's spanmetrics connector uses the same list (collector/otelcol-config.yaml);
#: a test keeps the two equal.
DURATION_BUCKETS_S: Final = (
    0.01, 0.02, 0.04, 0.08, 0.1, 0.16, 0.25, 0.32, 0.5, 0.64, 1.0, 1.28, 1.5, 2.0, 2.56,
    3.0, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

#: Bucket boundaries of ``rag.rerank.candidates`` (candidates per rerank call).
CANDIDATE_BUCKETS: Final = (1, 5, 10, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)

#: Bucket boundaries of ``gen_ai.client.token.usage``, as the GenAI conventions advise.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
