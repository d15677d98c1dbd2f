"""Ingestion and retrieval, measured end to end on a generated corpus served from 127.0.0.1.

One bounded run (about 5 minutes on 2 cores at --scale 1) that prints four tables:

1. First attach: the corpus of `bench/corpus.py` (300 HTML pages, 30 PDFs and 5 CSVs at scale 1)
   is served by tests/fakes/web.py's FakeWeb; each URL becomes a `Source` of one user and goes
   through `source_ingest(source_id=..., final_attempt=True)`, one at a time, as the embedded
   mode runs it. Documents/s and chunks/s per kind, seconds per document, and where the time
   went: the bench process wraps the fetcher's `fetch`, `ingestion.services.extract` and
   `chunk_document`, the embedder's `embed_batch` and the store's `upsert` with timers (app code
   is unchanged; "other" is the rest: database writes, status updates, hashing).
2. Second attach: another user attaches the same URLs. Per-source median and p95, against the
   first attach; the proof that nothing was fetched in full or embedded again is FakeWeb's
   `full_bodies` counter, the 304 answers, the embedder's and the store's call counters and
   the number of vectors, before and after.
3. Retrieval at 100,000 vectors: the store is filled up to `--vectors` with synthetic chunks
   (Document and Chunk rows with generated text, random unit vectors through
   `vector_store().upsert`; nothing is embedded), then `retrieve(document_ids=<5 documents>,
   limit=5)` runs over `--queries` questions, with the query embedding, the vector search and
   BM25 timed inside the same calls; the same queries at corpus size are the baseline. The app's
   embedded store is Qdrant Edge; the same points then go into qdrant-client's local mode (the
   other embedded choice, `QdrantClient(path=...)`; here in memory, which searches the same
   way) and the same `retrieve` calls run against it, their ranked vector hits checked against
   Edge's. Last, how long the Edge store takes to open again.
4. Recall@5 of the labelled questions of `bench/corpus.py`, each asked over its own 5 to 20
   attached documents: vector search only, BM25 only, reciprocal rank fusion (k=60, over the
   same 30 + 30 candidates the app uses) and `retrieve` with keyword_weight 0.3, 0.5 and 0.7.
   Run before the store is filled (the filler is filtered out by document anyway).

Uses SQLite and the embedded Qdrant in a new temporary VAR_DIR (QDRANT_ENDPOINT is ignored; the
directory is removed at the end unless --keep-var), or DATABASE_URL if set: a Postgres database is
created if missing and must hold no documents; the bench's rows are deleted at the end.

    .venv/bin/python bench/ingest.py [--scale 1.0] [--vectors 100000] [--queries 50]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import ensure_postgres_database, percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "multillm.settings")
os.environ.setdefault("DEBUG", "off")
os.environ.setdefault("SECRET_KEY", "bench-only-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ["VAR_DIR"] = tempfile.mkdtemp(prefix="multillm-bench-ingest-")
os.environ["FETCH_ALLOWLIST"] = "127.0.0.1"
os.environ["QDRANT_ENDPOINT"] = ""

FUSION_WEIGHTS = (0.3, 0.5, 0.7)
RRF_K = 60
KINDS = ("identifier", "number", "paraphrase", "distractor", "pdf-page", "csv-row")
SYNTHETIC_CHUNKS_PER_DOCUMENT = 50
STAGES = ("fetch", "extract", "chunk", "embed", "store")


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class Timer:
    """Seconds, calls and items of a wrapped callable; `log` keeps (seconds, kwargs, result) when on."""

    seconds: float = 0.0
    calls: int = 0
    items: int = 0
    logging: bool = False
    log: list[tuple[float, dict[str, Any], Any]] = field(default_factory=list)

    def wrap(self, function: Callable[..., Any], count: Callable[..., int] | None = None) -> Callable[..., Any]:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            self.calls += 1
            self.items += count(*args, **kwargs) if count else 0
            if self.logging:
                self.log.append((elapsed, kwargs, result))
            return result

        return timed

    def snapshot(self) -> tuple[float, int, int]:
        return self.seconds, self.calls, self.items


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from django.conf import settings

        from bench.corpus import corpus_generate
        from ingestion import services
        from ingestion.embedder import local_embedder
        from ingestion.fetcher import SafeFetcher
        from ingestion.vectorstore import vector_store
        from tests.fakes.web import Document as WebDocument
        from tests.fakes.web import FakeWeb

        self.args = args
        self.settings = settings
        started = time.perf_counter()
        self.corpus = corpus_generate(scale=args.scale, seed=args.seed)
        progress(f"corpus generated in {time.perf_counter() - started:.1f} s: {len(self.corpus.documents)} documents")
        self.web = FakeWeb().start()
        for document in self.corpus.documents:
            self.web.documents[document.path] = WebDocument(document.body, document.content_type)
        self.embedder = local_embedder()
        self.store = vector_store()
        self.timers = {name: Timer() for name in ("fetch", "extract", "chunk", "embed", "store", "search")}
        # Timers set on the instances and module attributes the pipeline looks up at call time.
        self.fetcher = SafeFetcher()
        self.fetcher.fetch = self.timers["fetch"].wrap(self.fetcher.fetch)  # type: ignore[method-assign]
        services.extract = self.timers["extract"].wrap(services.extract)  # type: ignore[attr-defined]
        services.chunk_document = self.timers["chunk"].wrap(services.chunk_document)  # type: ignore[attr-defined]
        self.embedder.embed_batch = self.timers["embed"].wrap(  # type: ignore[method-assign]
            self.embedder.embed_batch, count=lambda texts: len(texts)
        )
        self.store.upsert = self.timers["store"].wrap(  # type: ignore[method-assign]
            self.store.upsert, count=lambda **kwargs: len(kwargs["vectors"])
        )
        self.store.search = self.timers["search"].wrap(self.store.search)  # type: ignore[method-assign]
        self.document_ids: dict[str, int] = {}
        self.first_seconds: dict[str, float] = {}
        self.reports: dict[int, list[str]] = {}

    # --- helpers ----------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.web.url(path)

    def vector_count(self) -> int:
        return self.store.count(model_id=self.embedder.model_id, dimensions=self.embedder.dimensions)

    def ingest(self, owner: Any, paths: Iterable[str]) -> dict[str, tuple[float, Any, dict[str, float]]]:
        """Attach each URL for `owner` and run the pipeline: (seconds, source, seconds per stage) per path."""
        from ingestion.models import Source
        from ingestion.services import source_ingest

        results = {}
        paths = list(paths)
        for number, path in enumerate(paths, start=1):
            source = Source.objects.create(owner=owner, url=self.url(path))
            before = {name: timer.seconds for name, timer in self.timers.items()}
            started = time.perf_counter()
            source_ingest(source_id=source.pk, final_attempt=True, fetcher=self.fetcher)
            elapsed = time.perf_counter() - started
            stages = {name: timer.seconds - before[name] for name, timer in self.timers.items()}
            stages["other"] = elapsed - sum(stages[name] for name in STAGES)
            results[path] = (elapsed, Source.objects.select_related("document").get(pk=source.pk), stages)
            if number % 50 == 0 or number == len(paths):
                progress(f"  {number}/{len(paths)} sources")
        return results

    # --- 1. first attach --------------------------------------------------------------

    def first_attach(self) -> None:
        import random

        from django.contrib.auth.models import User

        alice = User.objects.create(username="bench-alice")
        paths = [document.path for document in self.corpus.documents]
        random.Random(self.args.seed).shuffle(paths)  # kinds interleaved, as users attach them
        progress(f"1. first attach of {len(paths)} URLs")
        embed_before = self.timers["embed"].snapshot()
        started = time.perf_counter()
        results = self.ingest(alice, paths)
        wall = time.perf_counter() - started
        for path, (seconds, source, _) in results.items():
            self.first_seconds[path] = seconds
            if source.document_id:
                self.document_ids[path] = source.document_id

        kinds = {document.path: document.kind for document in self.corpus.documents}
        sizes = {document.path: len(document.body) for document in self.corpus.documents}
        failed = [(path, source.error) for path, (_, source, _) in results.items() if source.status != "ready"]
        throughput, split = [], []
        for kind in ("html", "pdf", "csv", "all"):
            chosen = [path for path in paths if kind in ("all", kinds[path])]
            seconds = [results[path][0] for path in chosen]
            chunks = sum(results[path][1].document.chunk_count for path in chosen if results[path][1].document)
            total = sum(seconds)
            throughput.append(
                f"{kind:<6}{len(chosen):>6}{chunks:>8}{sum(sizes[p] for p in chosen) / 1024:>10.0f}{total:>9.1f}"
                f"{len(chosen) / total:>9.2f}{chunks / total:>10.1f}{ms(statistics.median(seconds)):>11}"
                f"{ms(percentile(seconds, 0.95)):>10}"
            )
            spent = {name: sum(results[path][2][name] for path in chosen) for name in (*STAGES, "other")}
            split.append(
                f"{kind:<6}"
                + "".join(f"{spent[name]:>7.1f} {spent[name] / total:>4.0%}" for name in (*STAGES, "other"))
                + f"{total:>8.1f}{total / chunks * 1000:>10.1f}"
            )
        embed_calls = self.timers["embed"].calls - embed_before[1]
        embed_texts = self.timers["embed"].items - embed_before[2]
        embed_seconds = self.timers["embed"].seconds - embed_before[0]
        self.reports[1] = [
            f"1. First attach: {len(paths)} URLs by one user, one source at a time, in process "
            f"({self.database_name()}, embedded Qdrant); {len(failed)} failed; wall {wall:.1f} s",
            f"{'kind':<6}{'docs':>6}{'chunks':>8}{'KB':>10}{'total s':>9}{'docs/s':>9}{'chunks/s':>10}"
            f"{'median ms':>11}{'p95 ms':>10}   (ms per document)",
            *throughput,
            "",
            "time split, s and share of the kind's total (other = database writes, status updates, hashing)",
            f"{'kind':<6}" + "".join(f"{name:>12}" for name in (*STAGES, "other")) + f"{'total s':>8}{'ms/chunk':>10}",
            *split,
            f"embed_batch: {embed_calls} calls, {embed_texts} texts, {embed_texts / embed_seconds:.1f} texts/s; "
            f"store.upsert: {self.timers['store'].calls} calls; {self.vector_count()} vectors stored",
            *(f"FAILED {path}: {error}" for path, error in failed[:5]),
        ]

    def database_name(self) -> str:
        return self.settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]

    # --- 2. second attach -------------------------------------------------------------

    def second_attach(self) -> None:
        from django.contrib.auth.models import User

        bob = User.objects.create(username="bench-bob")
        paths = list(self.first_seconds)
        progress(f"2. second attach of {len(paths)} URLs by another user")
        full_before, hits_before = sum(self.web.full_bodies.values()), sum(self.web.hits.values())
        embed_before, store_before = self.timers["embed"].snapshot(), self.timers["store"].snapshot()
        vectors_before = self.vector_count()
        results = self.ingest(bob, paths)
        fetch = [stages["fetch"] for _, _, stages in results.values()]
        rest = [seconds - stages["fetch"] for seconds, _, stages in results.values()]
        full_after, hits_after = sum(self.web.full_bodies.values()), sum(self.web.hits.values())
        second = [seconds for seconds, _, _ in results.values()]
        first = list(self.first_seconds.values())
        ready = sum(source.status == "ready" for _, source, _ in results.values())
        same = sum(source.document_id == self.document_ids.get(path) for path, (_, source, _) in results.items())
        self.reports[2] = [
            f"2. Second attach: the same {len(paths)} URLs by another user (ms per source)",
            f"{'':<16}{'median ms':>10}{'p95 ms':>10}{'max ms':>10}",
            f"{'first attach':<16}{ms(statistics.median(first)):>10}{ms(percentile(first, 0.95)):>10}"
            f"{ms(max(first)):>10}",
            f"{'second attach':<16}{ms(statistics.median(second)):>10}{ms(percentile(second, 0.95)):>10}"
            f"{ms(max(second)):>10}   second/first median = {statistics.median(second) / statistics.median(first):.3f}",
            f"{'  of which fetch':<16}{ms(statistics.median(fetch)):>10}{ms(percentile(fetch, 0.95)):>10}"
            f"{ms(max(fetch)):>10}   (a conditional GET answered 304)",
            f"{'  the rest':<16}{ms(statistics.median(rest)):>10}{ms(percentile(rest, 0.95)):>10}"
            f"{ms(max(rest)):>10}   (database reads and writes, two status updates)",
            f"full bodies served {full_before} -> {full_after} (+{full_after - full_before}); requests "
            f"+{hits_after - hits_before}, of which 304 +{(hits_after - hits_before) - (full_after - full_before)}",
            f"embed_batch calls +{self.timers['embed'].calls - embed_before[1]} (texts "
            f"+{self.timers['embed'].items - embed_before[2]}); store.upsert calls "
            f"+{self.timers['store'].calls - store_before[1]}; vectors {vectors_before} -> {self.vector_count()}",
            f"ready {ready}/{len(paths)}; same document as the first user's {same}/{len(paths)}",
        ]

    # --- labels -----------------------------------------------------------------------

    def answer_chunks(self) -> dict[int, set[int]]:
        """For each question (by position), the ids of the chunks that hold its answer."""
        from ingestion.models import Chunk

        labels: dict[int, set[int]] = {}
        targets = {self.document_ids[q.path] for q in self.corpus.questions if q.path in self.document_ids}
        chunks = defaultdict(list)
        for row in Chunk.objects.filter(document_id__in=targets).values(
            "id", "document_id", "text", "page", "row_start", "row_end"
        ):
            chunks[row["document_id"]].append(row)
        for position, question in enumerate(self.corpus.questions):
            needle = collapse(question.needle)
            found = set()
            for chunk in chunks.get(self.document_ids.get(question.path, -1), []):
                if needle not in collapse(chunk["text"]):
                    continue
                if question.page is not None and chunk["page"] != question.page:
                    continue
                if question.row is not None and not (
                    chunk["row_start"] is not None and chunk["row_start"] <= question.row <= chunk["row_end"]
                ):
                    continue
                found.add(chunk["id"])
            if found:
                labels[position] = found
        return labels

    # --- 4. recall --------------------------------------------------------------------

    def recall(self) -> None:
        from ingestion.models import Chunk
        from ingestion.retrieval import KEYWORD_CANDIDATES, VECTOR_CANDIDATES, bm25_scores, retrieve

        labels = self.answer_chunks()
        questions = self.corpus.questions
        progress(f"4. recall@5 of {len(labels)} labelled questions ({len(questions) - len(labels)} unlabelled)")
        methods = ["vector", "bm25", "rrf", *(f"fused {w}" for w in FUSION_WEIGHTS)]
        hits: dict[str, Counter[str]] = {method: Counter() for method in methods}
        asked: Counter[str] = Counter()
        attached_sizes = []
        for position, answer in labels.items():
            question = questions[position]
            document_ids = [self.document_ids[path] for path in question.attached if path in self.document_ids]
            attached_sizes.append(len(document_ids))
            asked[question.kind] += 1
            rows = list(Chunk.objects.filter(document_id__in=document_ids).values_list("id", "document_id", "index"))
            by_position = {(document_id, index): chunk_id for chunk_id, document_id, index in rows}
            vector = self.embedder.embed_batch([question.text])[0]
            found = self.store.search(
                model_id=self.embedder.model_id, dimensions=self.embedder.dimensions, vector=vector,
                document_ids=document_ids, limit=VECTOR_CANDIDATES,
            )  # fmt: skip
            vector_ranked = [by_position[(h.document_id, h.chunk_index)] for h in found]
            texts = Chunk.objects.filter(document_id__in=document_ids).values_list("id", "text")
            keyword = bm25_scores(question.text, list(texts))
            keyword_ranked = sorted(keyword, key=keyword.__getitem__, reverse=True)[:KEYWORD_CANDIDATES]
            fused: Counter[int] = Counter()
            for ranked in (vector_ranked, keyword_ranked):
                for rank, chunk_id in enumerate(ranked, start=1):
                    fused[chunk_id] += 1 / (RRF_K + rank)
            top = {
                "vector": vector_ranked[:5],
                "bm25": keyword_ranked[:5],
                "rrf": [chunk_id for chunk_id, _ in fused.most_common(5)],
            }
            for weight in FUSION_WEIGHTS:
                passages = retrieve(document_ids=document_ids, query=question.text, limit=5, keyword_weight=weight)
                top[f"fused {weight}"] = [passage.chunk_id for passage in passages]
            for method in methods:
                if answer & set(top[method]):
                    hits[method][question.kind] += 1
        unlabelled = Counter(questions[i].kind for i in range(len(questions)) if i not in labels)
        lines = [
            f"4. Recall@5: {sum(asked.values())} labelled questions, each over its own attached documents "
            f"({min(attached_sizes)}-{max(attached_sizes)}, median {statistics.median(attached_sizes):g}); "
            f"share of questions with an answer chunk in the top 5",
            f"{'kind':<12}{'n':>4}" + "".join(f"{method:>10}" for method in methods),
        ]
        for kind in [*KINDS, "all"]:
            n = sum(asked.values()) if kind == "all" else asked[kind]
            if not n:
                continue
            cells = [(sum(hits[method].values()) if kind == "all" else hits[method][kind]) / n for method in methods]
            lines.append(f"{kind:<12}{n:>4}" + "".join(f"{cell:>10.0%}" for cell in cells))
        lines.append(
            "vector = qdrant top 30 by cosine; bm25 = the app's bm25_scores; rrf = 1/(60+rank) summed over both "
            "lists; fused w = retrieve(keyword_weight=w), 0.5 being the app's default"
        )
        if unlabelled:
            lines.append(f"unlabelled (no chunk holds the planted text): {dict(unlabelled)}")
        self.reports[4] = lines

    # --- 3. retrieval at 100k ---------------------------------------------------------

    def latency_queries(self) -> list[tuple[str, list[int]]]:
        """`--queries` questions of every kind, each over 5 attached documents (the answer's and 4 others)."""
        chosen = []
        questions = [q for q in self.corpus.questions if all(p in self.document_ids for p in q.attached[:5])]
        for index in range(self.args.queries):
            question = questions[index * len(questions) // self.args.queries % len(questions)]
            chosen.append((question.text, [self.document_ids[path] for path in question.attached[:5]]))
        return chosen

    def time_retrieve(self, queries: list[tuple[str, list[int]]]) -> dict[str, list[float]]:
        """retrieve() per query, with its query embedding and vector search timed inside it,
        and BM25 (with and without loading the chunks) timed on its own."""
        import ingestion.retrieval
        from ingestion.models import Chunk
        from ingestion.retrieval import bm25_scores, retrieve

        ingestion.retrieval.vector_store = lambda: self.store  # type: ignore[attr-defined]
        times: dict[str, list[float]] = defaultdict(list)
        self.timers["search"].log.clear()
        for number, (query, document_ids) in enumerate([queries[0], queries[1], *queries]):
            embed, search = self.timers["embed"].seconds, self.timers["search"].seconds
            self.timers["search"].logging = number >= 2
            started = time.perf_counter()
            retrieve(document_ids=document_ids, query=query, limit=5)
            elapsed = time.perf_counter() - started
            self.timers["search"].logging = False
            started = time.perf_counter()
            texts = list(Chunk.objects.filter(document_id__in=document_ids).values_list("id", "text"))
            loaded = time.perf_counter()
            bm25_scores(query, texts)
            done = time.perf_counter()
            if number < 2:  # warm-up
                continue
            times["retrieve"].append(elapsed)
            times["embed"].append(self.timers["embed"].seconds - embed)
            times["search"].append(self.timers["search"].seconds - search)
            times["bm25+load"].append(done - started)
            times["bm25"].append(done - loaded)
        return times

    def corpus_points(self) -> list[tuple[str, list[float], dict[str, Any]]]:
        """Every point of the corpus (before the filler), read back from the Edge store: id, vector, payload."""
        from ingestion.vectorstore import collection_name

        qe = self.store.qe  # type: ignore[attr-defined]
        shard = self.store._shard(collection_name(self.embedder.model_id, self.embedder.dimensions), None)  # type: ignore[attr-defined]
        points, offset = [], None
        while True:
            records, offset = shard.scroll(
                qe.ScrollRequest(offset=offset, limit=1000, with_payload=True, with_vector=True)
            )
            points += [(str(r.id), list(r.vector), dict(r.payload or {})) for r in records]
            if offset is None:
                return points

    def fill(self) -> tuple[list[tuple[str, Any, dict[str, Any]]], str]:
        """Synthetic documents and chunks up to `--vectors` points; returns their points for qdrant-edge."""
        import numpy as np

        from bench.corpus import synthetic_chunk_texts
        from ingestion.models import Chunk, Document
        from ingestion.vectorstore import point_id

        need = self.args.vectors - self.vector_count()
        if need <= 0:
            return [], "no filler needed"
        count = -(-need // SYNTHETIC_CHUNKS_PER_DOCUMENT)
        progress(f"3. filling the store with {need} synthetic chunks in {count} documents")
        texts = synthetic_chunk_texts(count=2000, seed=self.args.seed)
        started = time.perf_counter()
        documents = Document.objects.bulk_create(
            Document(
                content_hash=hashlib.sha256(f"bench-synthetic-{index}".encode()).hexdigest(), kind="text",
                title=f"Synthetic notes {index}", status=Document.Status.READY, embedding_model=self.embedder.model_id,
                chunk_count=min(SYNTHETIC_CHUNKS_PER_DOCUMENT, need - index * SYNTHETIC_CHUNKS_PER_DOCUMENT),
            )
            for index in range(count)
        )  # fmt: skip
        Chunk.objects.bulk_create(
            (
                Chunk(document=document, index=i, text=texts[(d * 7 + i) % len(texts)],
                      char_end=len(texts[(d * 7 + i) % len(texts)]), token_count=150)
                for d, document in enumerate(documents)
                for i in range(document.chunk_count)
            ),
            batch_size=5000,
        )  # fmt: skip
        rows_seconds = time.perf_counter() - started
        rng = np.random.default_rng(self.args.seed)
        vectors = rng.standard_normal((need, self.embedder.dimensions), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        points = []
        started = time.perf_counter()
        offset = 0
        for document in documents:
            block = vectors[offset : offset + document.chunk_count]
            self.store.upsert(
                model_id=self.embedder.model_id, document_id=document.pk, content_hash=document.content_hash,
                vectors=block.tolist(), start_index=0,
            )  # fmt: skip
            points += [
                (point_id(content_hash=document.content_hash, chunk_index=i, model_id=self.embedder.model_id),
                 block[i], {"document_id": document.pk, "chunk_index": i})
                for i in range(document.chunk_count)
            ]  # fmt: skip
            previous, offset = offset, offset + document.chunk_count
            if previous // 10_000 != offset // 10_000:
                progress(f"  {offset}/{need} vectors, {time.perf_counter() - started:.0f} s")
        upsert_seconds = time.perf_counter() - started
        summary = (
            f"filler: {need} chunks in {count} documents; rows {rows_seconds:.1f} s; vectors through "
            f"vector_store().upsert {upsert_seconds:.1f} s ({need / upsert_seconds:.0f} points/s)"
        )
        return points, summary

    def latency(self) -> None:
        queries = self.latency_queries()
        progress(f"3. retrieve() at corpus size: {len(queries)} queries")
        small_count = self.vector_count()
        small = self.time_retrieve(queries)
        corpus_points = self.corpus_points()
        filler, fill_summary = self.fill()
        large_count = self.vector_count()
        progress(f"3. retrieve() at {large_count} vectors, Qdrant Edge: {len(queries)} queries")
        large = self.time_retrieve(queries)
        edge_searches = list(self.timers["search"].log)
        local, local_summary = self.local_store(corpus_points + filler)
        progress(f"3. retrieve() at {large_count} vectors, qdrant-client local mode: {len(queries)} queries")
        edge_store, self.store = self.store, local
        try:
            local_large = self.time_retrieve(queries)
        finally:
            self.store = edge_store
        local_searches = list(self.timers["search"].log)
        same = sum(
            [(h.document_id, h.chunk_index) for h in edge[2]] == [(h.document_id, h.chunk_index) for h in other[2]]
            for edge, other in zip(edge_searches, local_searches, strict=True)
        )
        lines = [
            f"3. Retrieval latency: retrieve(document_ids=<5 documents>, limit=5), {len(queries)} queries "
            f"(+2 warm-up), the vector search's top 30 filtered by document; Qdrant Edge "
            f"{self._version('qdrant-edge-py')} (the app's embedded store) against qdrant-client "
            f"{self._version('qdrant-client')} local mode",
            fill_summary,
            local_summary,
            f"{'':<30}{f'Edge p50 @{small_count}':>18}{f'Edge p50 @{large_count}':>18}{'p95':>9}"
            f"{f'local p50 @{large_count}':>19}{'p95':>9}{'local/Edge p50':>16}",
        ]
        names = {
            "retrieve": "retrieve() total ms",
            "embed": "  query embedding ms",
            "search": "  vector search ms",
            "bm25+load": "  BM25 with chunk load ms",
            "bm25": "  BM25 scoring alone ms",
        }
        for key, label in names.items():
            a, b, c = (statistics.median(times[key]) for times in (small, large, local_large))
            lines.append(
                f"{label:<30}{ms(a):>18}{ms(b):>18}{ms(percentile(large[key], 0.95)):>9}{ms(c):>19}"
                f"{ms(percentile(local_large[key], 0.95)):>9}{c / b if b else 0:>15.0f}x"
            )
        lines.append(f"same ranked top-30 vector hits in both stores: {same}/{len(edge_searches)} queries")
        lines.append(self.reopen_times(large_count, local))
        self.reports[3] = lines

    def _version(self, package: str) -> str:
        from importlib.metadata import version

        return version(package)

    def local_store(self, points: list[tuple[str, Any, dict[str, Any]]]) -> tuple[Any, str]:
        """The same points in qdrant-client's local mode, with the app's search code around it."""
        from qdrant_client import QdrantClient, models

        from ingestion.vectorstore import ServerVectorStore

        progress(f"3. qdrant-client local mode: upserting {len(points)} points")
        # In memory: its searches are the same as on disk (local mode keeps every point in Python
        # either way), and filling it on disk takes about 1,000 s at 100k points on 2 busy cores.
        store = ServerVectorStore(QdrantClient(location=":memory:"))
        name = store.ensure_collection(self.embedder.model_id, self.embedder.dimensions)
        started = time.perf_counter()
        for offset in range(0, len(points), 1000):
            batch = [
                models.PointStruct(id=point, vector=vector if isinstance(vector, list) else vector.tolist(),
                                   payload=payload)
                for point, vector, payload in points[offset : offset + 1000]
            ]  # fmt: skip
            store.client.upsert(name, points=batch, wait=True)
        seconds = time.perf_counter() - started
        store.search = self.timers["search"].wrap(store.search)  # type: ignore[method-assign]
        stored = store.count(model_id=self.embedder.model_id, dimensions=self.embedder.dimensions)
        summary = (
            f"local mode (in memory): the same {stored} "
            f"points upserted in {seconds:.1f} s ({len(points) / seconds:.0f} points/s, batches of 1000)"
        )
        return store, summary

    def reopen_times(self, count: int, local: Any) -> str:
        """How long the Edge store takes to open again at this size (a restart of the web process)."""
        from ingestion.vectorstore import EdgeVectorStore, edge_store_path

        local.close()
        self.store.close()
        started = time.perf_counter()
        edge = EdgeVectorStore(edge_store_path())
        reopened = edge.count(model_id=self.embedder.model_id, dimensions=self.embedder.dimensions)
        edge_open = time.perf_counter() - started
        edge.close()
        return f"open the Edge store again (a restart): {edge_open:.2f} s, {reopened} points found"

    def cleanup(self) -> None:
        """Delete the bench's rows from a database that outlives the run (DATABASE_URL)."""
        if not os.environ.get("DATABASE_URL"):
            return
        from django.contrib.auth.models import User

        from ingestion.models import Document, FetchedUrl

        FetchedUrl.objects.all().delete()
        Document.objects.all().delete()
        User.objects.filter(username__in=["bench-alice", "bench-bob"]).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="corpus size: 1.0 = 300 pages, 30 PDFs, 5 CSVs")
    parser.add_argument("--vectors", type=int, default=100_000, help="store size for the latency table")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-var", action="store_true", help="keep the temporary VAR_DIR (about 650 MB)")
    args = parser.parse_args()
    try:
        run(args)
    finally:
        if not args.keep_var:
            shutil.rmtree(os.environ["VAR_DIR"], ignore_errors=True)
        else:
            progress(f"VAR_DIR kept: {os.environ['VAR_DIR']}")


def run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    ensure_postgres_database()

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from ingestion.models import Document

    if Document.objects.exists():
        sys.exit("The database already holds documents; give the benchmark an empty one.")
    # qdrant-client warns past 20,000 points in local mode, and of payload indexes it ignores; the table says why.
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    warnings.filterwarnings("ignore", message="Payload indexes have no effect")

    bench = Bench(args)
    try:
        bench.first_attach()
        bench.second_attach()
        bench.recall()
        bench.latency()
    finally:
        bench.web.stop()
        bench.cleanup()
        for number in sorted(bench.reports):
            print("\n".join(bench.reports[number]))
            print()
    print(f"run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
