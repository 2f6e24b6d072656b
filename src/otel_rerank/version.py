"""The installed otel-rerank version."""

__version__ = "0.1.0"
