"""Query sets for the reranker benchmark: the JSONL format, and TREC collections.

A query set is a list of queries, each with the candidates a first-stage retriever returned
(in its order) and, optionally, a 0/1 relevance label per candidate. On disk it is JSONL,
one query per line::

    {"query": "...", "candidates": [{"text": "...", "label": 1}, {"text": "...", "label": 0}]}

(a candidate may also be a bare string, without a label). TREC-style collections such as
Cranfield (documents, topics and qrels in three files) are turned into the same shape by
retrieving each query's top candidates with a bi-encoder, so that labels come from the
qrels and the lift numbers mean something when a real cross-encoder is benchmarked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_rerank._toolkit import write_atomically


class QuerySetError(ValueError):
    """A query set cannot be read: a missing file, a malformed line, a bad collection."""


@dataclass(frozen=True, slots=True)
class Query:
    """One query with its first-stage candidates, best first.

    Attributes:
        query: the query text.
        candidates: candidate texts in the first-stage (retrieval) order.
        labels: one 0/1 relevance label per candidate, or ``None`` when unlabelled.
    """

    query: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class QuerySet:
    """A named list of queries.

    Attributes:
        name: a short name (``stdlib-docstrings``, a file name).
        description: what the set is, in a sentence, for the benchmark's output.
        queries: the queries.
    """

    name: str
    description: str
    queries: list[Query] = field(default_factory=list)

    @property
    def labelled(self) -> bool:
        """Every query carries labels."""
        return bool(self.queries) and all(q.labels is not None for q in self.queries)

    @property
    def max_candidates(self) -> int:
        """The longest candidate list."""
        return max((len(q.candidates) for q in self.queries), default=0)

    def head(self, n: int | None) -> QuerySet:
        """The first ``n`` queries (all when ``n`` is ``None``)."""
        if n is None or n >= len(self.queries):
            return self
        return QuerySet(self.name, f"{self.description} (first {n} used)", self.queries[:n])

    def to_jsonl(self, path: str | os.PathLike[str]) -> Path:
        """Write the set in the JSONL format :func:`load_jsonl` reads."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_atomically(target, self._write_jsonl)

    def _write_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as handle:
            for q in self.queries:
                labels = q.labels if q.labels is not None else (None,) * len(q.candidates)
                candidates = [
                    {"text": t} if lab is None else {"text": t, "label": lab}
                    for t, lab in zip(q.candidates, labels, strict=True)
                ]
                handle.write(json.dumps({"query": q.query, "candidates": candidates}) + "\n")


def load_jsonl(
    path: str | os.PathLike[str], name: str | None = None, description: str | None = None
) -> QuerySet:
    """Read a query set from JSONL (see the module docstring for the format).

    Raises:
        QuerySetError: the file is missing, or a line is malformed (the message names it).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuerySetError(f"no such file: {file}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuerySetError(f"cannot read {file}: {exc}") from None
    queries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            queries.append(_parse_query(json.loads(line)))
        except json.JSONDecodeError as exc:
            raise QuerySetError(f"{file}, line {number}: not JSON ({exc.msg})") from None
        except RecursionError:
            raise QuerySetError(f"{file}, line {number}: JSON nested too deeply") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise QuerySetError(f"{file}, line {number}: {exc}") from None
    if not queries:
        raise QuerySetError(f"{file}: no queries")
    return QuerySet(
        name or file.name,
        description or f"{len(queries)} queries from {file}",
        queries,
    )


def _parse_query(obj: Any) -> Query:
    if not isinstance(obj, dict):
        raise ValueError("expected an object with 'query' and 'candidates'")
    query = obj.get("query")
    if not isinstance(query, str):
        raise ValueError("'query' must be a string")
    raw = obj.get("candidates")
    if not isinstance(raw, list) or not raw:
        raise ValueError("'candidates' must be a non-empty list")
    texts: list[str] = []
    labels: list[int | None] = []
    for i, candidate in enumerate(raw):
        if isinstance(candidate, str):
            texts.append(candidate)
            labels.append(None)
            continue
        if not isinstance(candidate, dict) or not isinstance(candidate.get("text"), str):
            raise ValueError(f"candidate {i} needs a string 'text'")
        texts.append(candidate["text"])
        label = candidate.get("label")
        if label is not None and (isinstance(label, bool) or label not in (0, 1)):
            raise ValueError(f"candidate {i}: 'label' must be 0 or 1, got {label!r}")
        labels.append(None if label is None else int(label))
    if all(label is None for label in labels):
        return Query(query, tuple(texts))
    if any(label is None for label in labels):
        raise ValueError("either every candidate has a 'label' or none does")
    return Query(query, tuple(texts), tuple(int(x) for x in labels if x is not None))


# -- TREC-style collections ------------------------------------------------------------------
_DOC = re.compile(r"<doc>(.*?)</doc>", re.S)
_TOP = re.compile(r"<top>(.*?)</top>", re.S)


def _field(block: str, tag: str) -> str:
    found = re.search(rf"<{tag}>(.*?)</{tag}>", block, re.S)
    return " ".join(found.group(1).split()) if found else ""


@dataclass(frozen=True, slots=True)
class TrecCollection:
    """Documents, topics and binary relevance judgments of a TREC-style collection.

    Attributes:
        documents: document id → text (title and body).
        topics: ``(qrels query id, query text)`` in file order.
        qrels: qrels query id → ids of the relevant documents.
    """

    documents: dict[str, str]
    topics: list[tuple[str, str]]
    qrels: dict[str, set[str]]


def read_trec(directory: str | os.PathLike[str]) -> TrecCollection:
    """Read a Cranfield-style directory: ``*.all.*.xml``, ``*.qry.xml``, ``*qrel*`` files.

    Queries are matched to the qrels by their position in the topic file (1, 2, 3, ...),
    not by ``<num>``: the Cranfield qrels renumber the queries 1-225 in file order while
    ``<num>`` keeps the original ids (up to 365).

    Raises:
        QuerySetError: a file is missing or holds nothing usable.
    """
    root = Path(directory)
    if not root.is_dir():
        raise QuerySetError(f"no such directory: {root}")
    docs_file = _one(root, "*.all.*.xml", "documents")
    topics_file = _one(root, "*.qry.xml", "queries")
    qrels_file = _one(root, "*qrel*", "relevance judgments")
    documents = {}
    for block in _DOC.findall(docs_file.read_text(encoding="utf-8")):
        doc_id = _field(block, "docno")
        title, text = _field(block, "title"), _field(block, "text")
        body = text if text.startswith(title) else f"{title}. {text}".strip(". ")
        if doc_id:
            documents[doc_id] = body or title
    topics = []
    for position, block in enumerate(_TOP.findall(topics_file.read_text(encoding="utf-8")), 1):
        title = _field(block, "title").rstrip(" .")
        topics.append((str(position), title))
    qrels: dict[str, set[str]] = {}
    for number, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 4:
            raise QuerySetError(f"{qrels_file}, line {number}: expected 'qid 0 docid rel'")
        qid, _, doc_id, rel = parts
        try:
            relevant = int(rel) > 0
        except ValueError:
            raise QuerySetError(f"{qrels_file}, line {number}: relevance {rel!r}") from None
        if relevant:
            qrels.setdefault(qid, set()).add(doc_id)
    if not documents or not topics:
        raise QuerySetError(f"{root}: no documents or no queries found")
    return TrecCollection(documents, topics, qrels)


def _one(root: Path, pattern: str, what: str) -> Path:
    found = sorted(p for p in root.glob(pattern) if p.is_file())
    if not found:
        raise QuerySetError(f"{root}: no {what} file ({pattern})")
    return found[0]


#: Turns texts into unit-length vectors (rows), e.g. a SentenceTransformer's ``encode``.
Embed = Callable[[Sequence[str]], Any]


def retrieve_top_k(
    queries: Sequence[str], documents: Sequence[str], k: int, embed: Embed
) -> list[list[int]]:
    """Indices of each query's ``k`` most similar documents by cosine similarity, best first.

    Ties keep document order (a stable sort), so the first stage is deterministic.
    """
    import numpy as np

    doc_vectors = np.asarray(embed(list(documents)), dtype=np.float32)
    query_vectors = np.asarray(embed(list(queries)), dtype=np.float32)
    doc_vectors /= np.maximum(np.linalg.norm(doc_vectors, axis=1, keepdims=True), 1e-12)
    query_vectors /= np.maximum(np.linalg.norm(query_vectors, axis=1, keepdims=True), 1e-12)
    similarity = query_vectors @ doc_vectors.T
    top = min(k, len(documents))
    return [np.argsort(-row, kind="stable")[:top].tolist() for row in similarity]


def trec_query_set(
    directory: str | os.PathLike[str],
    k: int,
    embed: Embed,
    max_queries: int | None = None,
) -> QuerySet:
    """A labelled query set from a TREC collection: bi-encoder top-``k``, labels from qrels.

    Only queries with at least one relevance judgment are kept.
    """
    collection = read_trec(directory)
    doc_ids = list(collection.documents)
    doc_texts = [collection.documents[d] for d in doc_ids]
    topics = [(qid, text) for qid, text in collection.topics if collection.qrels.get(qid)]
    if max_queries is not None:
        topics = topics[:max_queries]
    if not topics:
        raise QuerySetError(f"{directory}: no query has a relevance judgment")
    ranked = retrieve_top_k([t for _, t in topics], doc_texts, k, embed)
    queries = []
    for (qid, text), indices in zip(topics, ranked, strict=True):
        relevant = collection.qrels[qid]
        queries.append(
            Query(
                text,
                tuple(doc_texts[i] for i in indices),
                tuple(int(doc_ids[i] in relevant) for i in indices),
            )
        )
    name = Path(directory).name
    return QuerySet(
        name,
        f"{len(queries)} queries of the TREC collection {name}: top-{k} candidates retrieved "
        f"by all-MiniLM-L6-v2, labels from the qrels",
        queries,
    )
