"""A tiny BERT cross-encoder built offline in about a second, for the tests and benchmarks.

Test-only: it is not shipped in the wheel. The benchmarks (run as scripts from the repository)
import it as ``tests._tiny_model``.
"""

from __future__ import annotations

import os
from pathlib import Path

_TINY_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "python docs assistant answers questions about the standard library",
    "rerank the retrieved candidates with a cross encoder before calling the model",
    "latency budget percentile histogram span trace metric alert",
    "aeronautics wing boundary layer pressure flow supersonic",
)


def build_tiny_cross_encoder(path: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a tiny BERT cross-encoder (WordPiece tokenizer + 1-layer model) to ``path``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.train_from_iterator(
        _TINY_CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=special)
    )
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(str(target))
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    config.num_labels = 1  # one relevance score per (query, document) pair
    BertForSequenceClassification(config).save_pretrained(str(target))
    return target
