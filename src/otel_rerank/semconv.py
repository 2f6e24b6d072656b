"""Every span and metric name and attribute key otel-rerank writes, in one place.

Keys come from three vocabularies. The OpenTelemetry GenAI semantic conventions
(``gen_ai.*``, v1.41.1 of semantic-conventions, plus ``gen_ai.retrieval.top_k`` from the
``semantic-conventions-genai`` repository they moved to) are used wherever they define a key,
so generic GenAI dashboards work; ``gen_ai.rerank.*`` is *experimental*: its names match the
open proposal (semantic-conventions-genai issue #253), and each has an OpenInference twin.
OpenInference's keys (``openinference.span.kind``, ``reranker.*``, ``embedding.*``,
``llm.*``, ``retrieval.documents.*``) are written beside them so Arize Phoenix renders the
spans natively. Everything else lives in the project's own ``rag.*`` namespace.
Instrumentations import names from here and never spell a key inline, so a rename is a
one-line change and a grep shows every use; ``docs/semconv.md`` lists every key with the
convention and version it comes from (a test holds the two equal).
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
#: Token sampling (Anthropic's ``top_k``); retrieval uses ``gen_ai.retrieval.top_k``.
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: Final = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"
GEN_AI_RETRIEVAL_TOP_K: Final = "gen_ai.retrieval.top_k"
# Experimental: the open proposal's names; twins reranker.top_k and the candidate count.
GEN_AI_RERANK_CANDIDATE_COUNT: Final = "gen_ai.rerank.candidate.count"
GEN_AI_RERANK_TOP_N: Final = "gen_ai.rerank.top_n"
# Content (JSON, the conventions' schemas), written only when capture is on (_config).
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_RETRIEVAL_QUERY_TEXT: Final = "gen_ai.retrieval.query.text"
GEN_AI_RETRIEVAL_DOCUMENTS: Final = "gen_ai.retrieval.documents"

OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"

ERROR_TYPE: Final = "error.type"
DB_SYSTEM_NAME: Final = "db.system.name"
DB_COLLECTION_NAME: Final = "db.collection.name"
DB_NAMESPACE: Final = "db.namespace"
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
#: On LLM spans: the response model once known (the request model until then).
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_SYSTEM: Final = "llm.system"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
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
#: What ``rag.retrieval.top_score`` and the documents' ``document.score`` are on a
#: retrieval span: ``similarity`` (higher is better) or ``distance`` (lower is better).
RAG_RETRIEVAL_SCORE_KIND: Final = "rag.retrieval.score_kind"
RAG_RETRIEVAL_QUERY_COUNT: Final = "rag.retrieval.query_count"
RAG_RERANK_MAX_LENGTH: Final = "rag.rerank.max_length"
RAG_RERANK_TOP_SCORE: Final = "rag.rerank.top_score"
RAG_RERANK_TOP1_CHANGED: Final = "rag.rerank.top1_changed"
RAG_RERANK_KENDALL_TAU: Final = "rag.rerank.kendall_tau"
RAG_RERANK_SHADOW: Final = "rag.rerank.shadow"
#: The request's end-to-end latency budget (``otel_rerank.request(budget_ms=...)``).
RAG_REQUEST_BUDGET_MS: Final = "rag.request.budget_ms"
#: The rerank budget guard's decision (``otel_rerank.RerankBudget``), on the rerank span.
#: Time left before the rerank (request budget or explicit deadline), before the reserve.
RAG_RERANK_BUDGET_TIME_LEFT_MS: Final = "rag.rerank.budget.time_left_ms"
#: Time kept back for what follows the rerank (explicit, or learned chat p95).
RAG_RERANK_BUDGET_RESERVE_MS: Final = "rag.rerank.budget.reserve_ms"
#: Candidates the guard let the reranker score (0 when it skipped the rerank).
RAG_RERANK_BUDGET_K: Final = "rag.rerank.budget.k"
#: The cost model's prediction for ``k`` candidates, safety margin included.
RAG_RERANK_BUDGET_PREDICTED_MS: Final = "rag.rerank.budget.predicted_ms"
#: What the scoring of ``k`` candidates actually took.
RAG_RERANK_BUDGET_ACTUAL_MS: Final = "rag.rerank.budget.actual_ms"
RAG_RERANK_BUDGET_SKIPPED: Final = "rag.rerank.budget.skipped"
#: ``full`` | ``cut`` | ``skipped``: also the decisions counter's one attribute of its own.
RAG_RERANK_BUDGET_OUTCOME: Final = "rag.rerank.budget.outcome"
BUDGET_OUTCOME_FULL: Final = "full"
BUDGET_OUTCOME_CUT: Final = "cut"
BUDGET_OUTCOME_SKIPPED: Final = "skipped"
#: Document ids (capped) of the order users were served and of the reranker's order, so
#: feedback can be joined to a rerank; the retrieval order's ids too when it was not served.
RAG_RERANK_SERVED_IDS: Final = "rag.rerank.served.ids"
RAG_RERANK_RERANKED_IDS: Final = "rag.rerank.reranked.ids"
RAG_RERANK_RETRIEVAL_IDS: Final = "rag.rerank.retrieval.ids"
#: Which order was served: ``retrieval`` (shadow, off, skipped) or ``reranked`` (serve).
RAG_RERANK_SERVED_ORDER: Final = "rag.rerank.served.order"
SERVED_ORDER_RETRIEVAL: Final = "retrieval"
SERVED_ORDER_RERANKED: Final = "reranked"
#: ``OTEL_RERANK_MODE=interleave``: a team-draft interleaving of the two orders was served,
#: and per served position the order ("team") that contributed the document.
SERVED_ORDER_INTERLEAVED: Final = "interleaved"
RAG_RERANK_INTERLEAVE_TEAMS: Final = "rag.rerank.interleave.teams"
#: Feedback on a served document (``otel_rerank.feedback``), on a ``feedback {kind}`` span.
RAG_FEEDBACK_TRACE_ID: Final = "rag.feedback.trace_id"
RAG_FEEDBACK_DOCUMENT_ID: Final = "rag.feedback.document.id"
RAG_FEEDBACK_POSITION: Final = "rag.feedback.position"
RAG_FEEDBACK_KIND: Final = "rag.feedback.kind"
RAG_FEEDBACK_USEFUL: Final = "rag.feedback.useful"
OPERATION_FEEDBACK: Final = "feedback"
#: Counter of budget guard decisions, by ``rag.rerank.budget.outcome``.
METRIC_RERANK_BUDGET_DECISIONS: Final = "rag.rerank.budget.decisions"

# -- Stage vocabulary -------------------------------------------------------------------
OPERATION_EMBEDDINGS: Final = "embeddings"
OPERATION_RETRIEVAL: Final = "retrieval"
OPERATION_RERANK: Final = "rerank"
OPERATION_CHAT: Final = "chat"
#: The request (root) span: the GenAI conventions' workflow span.
OPERATION_INVOKE_WORKFLOW: Final = "invoke_workflow"

KIND_EMBEDDING: Final = "EMBEDDING"
KIND_RETRIEVER: Final = "RETRIEVER"
KIND_RERANKER: Final = "RERANKER"
KIND_LLM: Final = "LLM"
KIND_CHAIN: Final = "CHAIN"

SCORE_KIND_SIMILARITY: Final = "similarity"
SCORE_KIND_DISTANCE: Final = "distance"

# -- Metrics ------------------------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
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

#: The boundaries the GenAI conventions advise for ``gen_ai.client.operation.duration``.
GENAI_ADVISED_DURATION_BUCKETS_S: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip

#: Bucket boundaries of ``gen_ai.client.operation.duration``, in seconds: the GenAI
#: conventions' advised boundaries merged with ``DOCUMENTED_BUDGETS_S``. The advised ones
#: keep a ``histogram_quantile`` over series from another GenAI instrumentation meaningful
#: (and calls over 60 s out of +Inf); the budget ones make budget alerts exact. The
#: collector's spanmetrics connector uses the same list (collector/otelcol-config.yaml);
#: a test keeps the two equal. ``gen_ai.client.operation.time_to_first_chunk`` uses it too.
DURATION_BUCKETS_S: Final = tuple(
    sorted({*GENAI_ADVISED_DURATION_BUCKETS_S, *DOCUMENTED_BUDGETS_S})
)

#: Bucket boundaries of ``rag.rerank.candidates`` (candidates per rerank call).
CANDIDATE_BUCKETS: Final = (1, 5, 10, 20, 25, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000)

#: Bucket boundaries of ``gen_ai.client.token.usage``, as the GenAI conventions advise.
TOKEN_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
