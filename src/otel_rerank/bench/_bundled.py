"""The bundled query set: Python standard-library docstrings, built offline at first use.

Nothing can be downloaded, so the set is built from a real corpus every Python install
has, walked as the demo's corpus is (``otel_rerank._toolkit.stdlib_docstrings``), over a
subset of its modules that keeps the first build within a minute or two. Each documented
module, public class, function and method gives one entry: its docstring's summary line
is the *query* (with the object's own name removed, so the match is not a string lookup),
and the rest of the docstring is the *document*. For a sample of queries, all-MiniLM-L6-v2
retrieves the top candidates from every document in the pool; the one document written
for that query is labelled 1 (a known-item label), every other candidate 0. If the first
stage misses the source, the query keeps no relevant candidate, as in real retrieval.

It is a small, honest set for latency (realistic text lengths) and a rough quality signal;
it is not a substitute for labelled data from the application. The built set is cached
under ``otel_rerank.models.cache_dir()``, keyed by the Python version (docstrings change).
"""

from __future__ import annotations

import inspect
import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from otel_rerank._toolkit import stdlib_docstrings
from otel_rerank.bench._queries import Embed, Query, QuerySet, load_jsonl, retrieve_top_k

NAME = "stdlib-docstrings"
VERSION = 2  # 2: the docstrings walked as the demo's corpus walks them (_toolkit)
#: A subset of ``_toolkit.STDLIB_MODULES``: a pool of about 800 documents.
MODULES: tuple[str, ...] = (
    "argparse", "asyncio", "base64", "bisect", "calendar", "collections", "configparser",
    "contextlib", "csv", "dataclasses", "datetime", "decimal", "difflib", "email.utils",
    "enum", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext", "glob",
    "gzip", "hashlib", "heapq", "hmac", "html", "http.client", "http.cookies", "imaplib",
    "inspect", "ipaddress", "json", "locale", "logging", "mailbox", "mimetypes", "ntpath",
    "operator", "optparse", "os", "pathlib", "pickle", "platform", "plistlib", "poplib",
    "posixpath", "pprint", "queue", "quopri", "random", "re", "sched", "secrets", "shlex",
    "shutil", "smtplib", "socket", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "timeit", "tokenize", "traceback", "types",
    "typing", "unittest", "urllib.parse", "urllib.request", "uuid", "warnings", "wave",
    "weakref", "zipfile",
)  # fmt: skip
DEFAULT_QUERIES = 60
DEFAULT_K = 100
_MIN_QUERY_WORDS = 4
_MIN_DOC_WORDS = 12
_MAX_DOC_CHARS = 700


def description(queries: int, k: int) -> str:
    """What the bundled set is, for the benchmark's output."""
    return (
        f"bundled set '{NAME}': {queries} queries from Python {_python()} standard-library "
        f"docstrings (query = a summary line, document = the rest of its docstring); "
        f"top-{k} candidates retrieved by all-MiniLM-L6-v2; known-item labels"
    )


def _python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def docstring_pairs(modules: Sequence[str] = MODULES) -> list[tuple[str, str]]:
    """``(query, document)`` for every usable docstring of ``modules``, deduplicated."""
    seen: set[str] = set()
    pairs = []
    for qualname, raw in stdlib_docstrings(modules):
        summary, body = _split_summary(inspect.cleandoc(raw))
        query = _query_from_summary(summary, qualname)
        text = " ".join(body.split())[:_MAX_DOC_CHARS]
        if len(query.split()) < _MIN_QUERY_WORDS or len(text.split()) < _MIN_DOC_WORDS:
            continue
        if text in seen or query in seen:
            continue
        seen.update((text, query))
        pairs.append((query, text))
    return pairs


def _split_summary(doc: str) -> tuple[str, str]:
    # The summary is the first sentence of the first paragraph, which may wrap lines.
    text = " ".join(doc.split())
    first_paragraph = " ".join(doc.split("\n\n", 1)[0].split())
    match = re.search(r"(?<=[a-z0-9)])\.\s", first_paragraph)
    summary = first_paragraph[: match.start()] if match else first_paragraph
    return summary, text[len(summary) :].lstrip(" .")


def _query_from_summary(summary: str, qualname: str) -> str:
    text = summary.strip().rstrip(".")
    for part in qualname.split("."):
        text = re.sub(rf"\b{re.escape(part)}\b(\(\))?", "", text)
    text = re.sub(r"^[\s:,-]+", "", text)
    return " ".join(text.split())


def build(
    embed: Embed,
    queries: int = DEFAULT_QUERIES,
    k: int = DEFAULT_K,
    modules: Sequence[str] = MODULES,
    seed: int = 0,
) -> QuerySet:
    """Build the set: sample ``queries`` docstrings, retrieve top-``k`` with ``embed``."""
    pairs = docstring_pairs(modules)
    if not pairs:
        raise ValueError("no usable docstrings in the given modules")
    documents = [doc for _, doc in pairs]
    chosen = sorted(random.Random(seed).sample(range(len(pairs)), min(queries, len(pairs))))
    ranked = retrieve_top_k([pairs[i][0] for i in chosen], documents, k, embed)
    out = []
    for source, indices in zip(chosen, ranked, strict=True):
        out.append(
            Query(
                pairs[source][0],
                tuple(documents[i] for i in indices),
                tuple(int(i == source) for i in indices),
            )
        )
    return QuerySet(NAME, description(len(out), min(k, len(documents))), out)


def cache_path() -> Path:
    """Where the built set is cached."""
    from otel_rerank.models import cache_dir

    return cache_dir() / "bench" / f"{NAME}-v{VERSION}-py{_python()}.jsonl"


def bundled_query_set() -> QuerySet:
    """The bundled set, from the cache or built now (one to two minutes on a CPU).

    Raises:
        otel_rerank.models.ModelUnavailableError: the cache directory cannot be written
            (checked before the build, not after it).
    """
    from otel_rerank.models import cache_subdir, write_cache

    path = cache_path()
    if path.is_file():
        cached = load_jsonl(path)
        return QuerySet(
            NAME, description(len(cached.queries), cached.max_candidates), cached.queries
        )
    cache_subdir(path.parent.name)
    from sentence_transformers import SentenceTransformer

    from otel_rerank.models import embedding_model_path

    model = SentenceTransformer(str(embedding_model_path()), device="cpu")

    def embed(texts: Sequence[str]) -> object:
        return model.encode(list(texts), batch_size=64, normalize_embeddings=True)

    query_set = build(embed)
    # _write_jsonl: write_cache is atomic already (to_jsonl would add a second temporary)
    write_cache(path, query_set._write_jsonl, "the bundled query set")
    return query_set
