"""The bundled query set: Python standard-library docstrings, built offline at first use.

Nothing can be downloaded, so the set is built from a real corpus every Python install
has. Each documented public function, class and method of a fixed list of stdlib modules
gives one entry: its docstring's summary line is the *query* (with the object's own name
removed, so the match is not a string lookup), and the rest of the docstring is the
*document*. For a sample of queries, all-MiniLM-L6-v2 retrieves the top candidates from
every document in the pool; the one document written for that query is labelled 1 (a
known-item label), every other candidate 0. If the first stage misses the source, the
query keeps no relevant candidate, as in real retrieval.

It is a small, honest set for latency (realistic text lengths) and a rough quality signal;
it is not a substitute for labelled data from the application. The built set is cached
under ``otel_rerank.models.cache_dir()``, keyed by the Python version (docstrings change).
"""

from __future__ import annotations

import importlib
import inspect
import random
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from otel_rerank.bench._queries import Embed, Query, QuerySet, load_jsonl, retrieve_top_k

NAME = "stdlib-docstrings"
VERSION = 1
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
    for qualname, doc in _docstrings(modules):
        summary, body = _split_summary(doc)
        query = _query_from_summary(summary, qualname)
        text = " ".join(body.split())[:_MAX_DOC_CHARS]
        if len(query.split()) < _MIN_QUERY_WORDS or len(text.split()) < _MIN_DOC_WORDS:
            continue
        if text in seen or query in seen:
            continue
        seen.update((text, query))
        pairs.append((query, text))
    return pairs


def _docstrings(modules: Sequence[str]) -> Iterator[tuple[str, str]]:
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, obj in sorted(vars(module).items()):
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            doc = inspect.getdoc(obj)
            if doc:
                yield f"{module_name}.{name}", doc
            if inspect.isclass(obj):
                for attr, member in sorted(vars(obj).items()):
                    if attr.startswith("_") or not callable(member):
                        continue
                    member_doc = inspect.getdoc(member)
                    if member_doc:
                        yield f"{module_name}.{name}.{attr}", member_doc


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
    from otel_rerank.models import CACHE_ENV, ModelUnavailableError, cache_subdir

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
    try:
        query_set.to_jsonl(path)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot write the bundled query set to {path} ({exc.strerror or exc}); "
            f"set {CACHE_ENV} to a writable directory"
        ) from None
    return query_set
