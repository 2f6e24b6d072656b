"""The demo corpus: passages cut from the Python standard library's own docstrings.

A RAG demo needs a few thousand real passages with a clear licence that need no download.
The docstrings of the standard library (PSF licence) are already on every machine that runs
Python, so the corpus is built at set-up time: the standard-library modules of
``otel_rerank._toolkit`` are walked, each module, class, function and method docstring
becomes one passage (its first paragraphs, capped in words, titled with the object's dotted
name), and the passages are embedded once with the real all-MiniLM-L6-v2. Both are cached under
``otel_rerank.models.cache_dir()`` keyed by the Python version and the builder's settings,
so every later run loads them in well under a second.

Set-up runs inside ``suppress_instrumentation()``: indexing is not a request, and its one
large embeddings call would otherwise be the biggest span in the demo's trace file.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from otel_rerank import models
from otel_rerank._toolkit import STDLIB_MODULES, stdlib_docstrings

#: Bumped whenever the passages built from the same Python would change.
_BUILDER_VERSION: Final = 2
_DEFAULT_MAX_WORDS: Final = 40
#: Passages in the default corpus (about a third of what the module list yields): enough
#: for retrieval to have to work, small enough that the first run indexes it in seconds.
DEFAULT_PASSAGES: Final = 1000
_MIN_WORDS: Final = 6


@dataclass(frozen=True)
class Passage:
    """One retrievable passage: the documented object's dotted name and its docstring text."""

    id: int
    title: str
    text: str

    @property
    def content(self) -> str:
        """What is embedded, reranked and quoted: ``"title: text"``."""
        return f"{self.title}: {self.text}"


@dataclass
class Corpus:
    """Passages and their unit-length embeddings (row ``i`` belongs to ``passages[i]``)."""

    passages: list[Passage]
    embeddings: Any  # numpy float32 array, shape (len(passages), dimension)
    directory: Path
    built: bool  # True when this call built (some of) the cache rather than loading it


def _first_paragraphs(doc: str, max_words: int) -> str:
    words: list[str] = []
    for paragraph in re.split(r"\n\s*\n", doc.strip()):
        if paragraph.lstrip().startswith((">>>", "..")):
            break  # doctest or reST directive: not prose
        words.extend(paragraph.split())
        if len(words) >= max_words:
            break
    text = " ".join(words[:max_words])
    return text if len(words) <= max_words else text + " …"


def build_passages(
    max_passages: int,
    max_words: int = _DEFAULT_MAX_WORDS,
    modules: tuple[str, ...] = STDLIB_MODULES,
) -> list[Passage]:
    """Cut standard-library docstrings into at most ``max_passages`` distinct passages.

    When the cap bites, module docstrings go first, then module-level functions and
    classes, then methods — the public API people ask about before the details — and
    within each level the modules take turns, one passage per round, so every module
    stays represented. The result is sorted by dotted name.
    """
    by_length = sorted(modules, key=len, reverse=True)  # "collections.abc" before "collections"
    levels: list[dict[str, list[tuple[str, str]]]] = [{}, {}, {}]
    seen: set[str] = set()
    for title, doc in stdlib_docstrings(modules):
        text = _first_paragraphs(inspect.cleandoc(doc), max_words)
        if len(text.split()) < _MIN_WORDS or text in seen:
            continue
        seen.add(text)
        module = next((m for m in by_length if title == m or title.startswith(m + ".")), title)
        rest = title[len(module) :].lstrip(".")
        level = 0 if not rest else min(rest.count(".") + 1, 2)
        levels[level].setdefault(module, []).append((title, text))
    chosen: list[tuple[str, str]] = []
    for per_module in levels:
        queues = list(per_module.values())
        turn = 0
        while len(chosen) < max_passages and any(turn < len(q) for q in queues):
            for queue in queues:
                if turn < len(queue) and len(chosen) < max_passages:
                    chosen.append(queue[turn])
            turn += 1
    chosen.sort(key=lambda pair: pair[0])
    return [Passage(i, title, text) for i, (title, text) in enumerate(chosen)]


def _cache_key(max_passages: int, max_words: int) -> str:
    raw = "|".join(
        (
            str(_BUILDER_VERSION),
            sys.version,
            str(max_passages),
            str(max_words),
            ",".join(STDLIB_MODULES),
        )
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def corpus_dir(max_passages: int, max_words: int = _DEFAULT_MAX_WORDS) -> Path:
    """Where the corpus with these settings is cached."""
    return models.cache_dir() / "demo-corpus" / _cache_key(max_passages, max_words)


def load_corpus(
    embedder: Any,
    embedder_name: str,
    max_passages: int = DEFAULT_PASSAGES,
    max_words: int = _DEFAULT_MAX_WORDS,
    batch_size: int = 64,
    progress: bool = False,
) -> Corpus:
    """Load the cached corpus and its embeddings, building whichever is missing.

    Args:
        embedder: a ``SentenceTransformer`` (anything with its ``encode``).
        embedder_name: the embedder's model name; it keys the embeddings file.
        max_passages: corpus size cap (part of the cache key).
        max_words: words kept per passage (part of the cache key).
        batch_size: ``encode`` batch size when embedding the corpus.
        progress: show a progress bar on stderr while embedding (first run only).
    """
    import numpy as np
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    directory = models.cache_subdir("demo-corpus", _cache_key(max_passages, max_words))
    passages_file = directory / "passages.jsonl"
    built = False
    if passages_file.is_file():
        with passages_file.open(encoding="utf-8") as handle:
            passages = [Passage(**json.loads(line)) for line in handle]
    else:
        passages = build_passages(max_passages, max_words)
        lines = "".join(json.dumps(p.__dict__, ensure_ascii=False) + "\n" for p in passages)
        models.write_cache(
            passages_file, lambda p: p.write_text(lines, encoding="utf-8"), "the corpus cache"
        )
        built = True

    safe_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", embedder_name)
    vectors_file = directory / f"embeddings-{safe_name}.npy"
    embeddings = None
    if vectors_file.is_file():
        embeddings = np.load(vectors_file)
        if embeddings.shape[0] != len(passages):
            embeddings = None  # stale: written for another passage list
    if embeddings is None:
        with suppress_instrumentation():  # indexing, not a request: keep it out of traces
            embeddings = _embed([p.content for p in passages], embedder, batch_size, progress)

        def _save(path: Path) -> None:
            with path.open("wb") as handle:
                np.save(handle, embeddings)

        models.write_cache(vectors_file, _save, "the corpus cache")
        built = True
    return Corpus(passages, embeddings, directory, built)


def _embed(texts: list[str], embedder: Any, batch_size: int, progress: bool) -> Any:
    import numpy as np

    chunk = batch_size * 4  # a few batches per step: a steady bar, little per-call overhead
    steps = range(0, len(texts), chunk)
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(texts), desc="indexing the corpus (first run only)", unit="passage")
    parts = []
    for start in steps:
        part = texts[start : start + chunk]
        vectors = embedder.encode(
            part, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        parts.append(np.asarray(vectors, dtype=np.float32))
        if progress:
            bar.update(len(part))
    if progress:
        bar.close()
    return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)
