"""Context for subtasks (issue 13): naive top-k retrieval against gating + the optimiser.

**Corpus.** ``pydoc_data.topics``: the Python language reference's topics that CPython ships
for ``help()`` (the standard-library module ``pydoc_data``, dict ``topics``: 79 topics, about
466,000 characters under the pinned CPython 3.11.7). Nobody here wrote it, and it is fixed for
a given CPython version. Each topic is written to a temporary directory as ``NAME.rst`` (it is
Sphinx's text output, whose headings keep reStructuredText's underlines, so reading it as
``.rst`` gives each chunk its heading path) and added to a knowledge base in a SQLite store
by :func:`~automatos.retrieval.ingest.ingest`, what ``automatos kb add`` runs: the reader,
the chunker at ``context.chunk_tokens`` / ``context.chunk_overlap_tokens`` (180 / 30), the
embedded all-MiniLM-L6-v2 on the CPU, the entropy, the store's writes. ``ingest_chunks_per_s``
is chunks / seconds of that, the model already loaded (its load time is printed apart); token
counts are :func:`~automatos.llm.base.estimate_tokens`'s.

**Questions.** ``benchmarks/context_questions.json``: 56 questions over 44 topics, each with
1-3 answer facts, exact substrings of the corpus (compared case-folded, whitespace collapsed)
that a context answering the question must contain. The run fails loudly if a fact is not in
its topic, or not whole inside at least one chunk (a fact cut by a chunk boundary could never
be recalled).

**Workload.** Subtasks as a plan has them: every question is a subtask; after every two
questions, a synthesis step that depends on both ("Write a short comparison of the two answers
above."); and a few steps that compute or reformat ("What is 17 * 23?", "Turn the list above
into a table."). Whether a step needs context is decided by the engine's own rule,
:func:`automatos.phases.plan.context_need.needs_context`, from the step's text and whether it
has dependencies, never from the labels here.

- **naive**: the ``context.naive_k`` (5) chunks nearest by cosine, for every subtask, no budget.
- **optimised**: nothing for a subtask ``needs_context`` says needs none; for the others,
  what stage 3 gives it (:func:`~automatos.retrieval.choose.choose`, the engine's own
  selection: entropy and relevance cuts over the whole pool, the nearest
  ``context.max_candidates`` survivors through MMR and the knapsack) with a budget of 2,000
  tokens (the Molecule level's) and the shipped :class:`~automatos.settings.ContextSettings`.

**Figures.** ``tokens_*``: the chunks' tokens (the chunker's count,
:func:`~automatos.retrieval.chunking.estimate_tokens`) summed over every subtask;
``reduction = 1 - optimized / naive``. ``recall_*``: over the question subtasks, the fraction
(0..1) of all annotated facts found whole in one of the chunks the subtask was given; "2
points" of the target is 0.02 of it. The optimised figures are printed for every
pair of :data:`GRID` (``min_relevance``, ``relevance_margin``), with recall over the even and
the odd questions apart: the shipped defaults were chosen on this set, and the two halves show
how much that choice leans on particular questions. The JSON uses ``--min-relevance`` and
``--relevance-margin``, by default the shipped settings. ``select_ms_p50_10k_chunks`` is
the optimiser alone over all of 10,000 synthetic 384-d chunks (:func:`selection_timing`; the
real corpus has under a thousand), the worst case; ``stage_select_ms_p50_10k_chunks`` is
stage 3's own selection over the same chunks as its pool (the cuts over the whole matrix,
then the optimiser on what passes them).

Targets: context tokens reduced by >= 50% with fact recall lower by at most 2 points;
selection over 10,000 chunks <= 20 ms p50. A table goes to stderr; the last line of stdout is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import pydoc_data.topics
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from automatos import aio
from automatos.llm.base import estimate_tokens
from automatos.phases.plan.context_need import needs_context
from automatos.retrieval.base import ChunkRecord
from automatos.retrieval.choose import choose, optimizer_settings
from automatos.retrieval.embedder import LocalEmbedder
from automatos.retrieval.ingest import ingest
from automatos.retrieval.optimizer import Candidate, OptimizerSettings, optimize, word_entropy
from automatos.retrieval.pool import Pool
from automatos.settings import ContextSettings, EmbeddingSettings, StoreSettings
from automatos.store.sql import SqlStore

QUESTIONS = Path(__file__).with_name("context_questions.json")
CORPUS = f"pydoc_data.topics (CPython {sys.version.split()[0]})"
GRID: tuple[tuple[float, float | None], ...] = (
    (0.7, None),
    (0.6, None),
    (0.5, None),
    (0.4, None),
    (0.3, None),
    (0.4, 0.06),
    (0.4, 0.08),
    (0.4, 0.10),
    (0.4, 0.12),
    (0.5, 0.08),
)
"""The (``min_relevance``, ``relevance_margin``) pairs the optimised side is reported for:
the PRD's absolute cut (0.7) and lower ones, and the cut relative to the best match."""
TOKENIZER = "estimate"
"""The chunker's counts are :func:`~automatos.llm.base.estimate_tokens`'s."""
BUDGET = 2_000
"""Tokens of context per subtask: the Molecule level's budget."""

SYNTHESES = (
    "Write a short comparison of the two answers above.",
    "Summarise the two answers above in three sentences.",
    "Combine the two previous answers into one paragraph.",
)
"""The synthesis steps, in turn, each after two questions and depending on both."""
OTHER_STEPS = (
    ("What is 17 * 23?", False),
    ("Compute 2 ** 10 - 1.", False),
    ("What is 144 / 12 + 7?", False),
    ("Turn the list above into a table.", True),
    ("Format the answers above as a numbered list.", True),
    ("Sort the items above alphabetically.", True),
)
"""Steps that compute or reformat: (description, has dependencies)."""

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-folded, every run of whitespace one space: how facts are looked for."""
    return _SPACE.sub(" ", text).casefold().strip()


@dataclass(frozen=True, slots=True)
class Question:
    """A question of the set, the topic its facts come from, and the facts."""

    id: str
    topic: str
    question: str
    facts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subtask:
    """One step of the workload; ``question`` is set for the steps that ask a question."""

    description: str
    has_dependencies: bool
    question: Question | None
    index: int = -1
    """The question's place in the question set (its half: even or odd)."""


@dataclass(frozen=True, slots=True)
class Corpus:
    """The ingested corpus: chunks, their unit vectors (one row each) and their entropy."""

    chunks: list[ChunkRecord]
    vectors: npt.NDArray[np.float32]
    entropy: list[float]
    seconds: float
    load_seconds: float


def load_questions(path: Path, topics: dict[str, str]) -> list[Question]:
    """The questions of ``path``, after checking every fact is in its topic's text.

    Raises:
        SystemExit: naming every fact that is not in the corpus, or a question without facts.
    """
    raw = json.loads(path.read_text(encoding="utf-8"))
    questions = [
        Question(item["id"], item["topic"], item["question"], tuple(item["facts"]))
        for item in raw["questions"]
    ]
    problems = [f"{q.id}: no facts" for q in questions if not q.facts]
    for q in questions:
        text = normalise(topics.get(q.topic, ""))
        problems += [
            f"{q.id}: {f!r} not in topic {q.topic!r}" for f in q.facts if normalise(f) not in text
        ]
    if problems:
        raise SystemExit("facts not in the corpus:\n  " + "\n  ".join(problems))
    return questions


def ingest_corpus(
    topics: dict[str, str], directory: Path, settings: ContextSettings, embedder: LocalEmbedder
) -> Corpus:
    """Write the topics as ``.rst`` files and add them to a knowledge base in a SQLite store
    with the engine's own :func:`~automatos.retrieval.ingest.ingest`, as ``automatos kb add``
    does (timed, the model loaded first and its load timed apart); the corpus is what the
    store then holds."""
    docs = directory / "topics"
    docs.mkdir()
    for name, text in sorted(topics.items()):
        (docs / f"{name}.rst").write_text(text, encoding="utf-8")
    start = time.perf_counter()
    aio.run(embedder.embed(["load the model"]))
    load_seconds = time.perf_counter() - start
    return aio.run(_ingest(docs, directory / "store", settings, embedder, load_seconds))


async def _ingest(
    docs: Path, data: Path, settings: ContextSettings, embedder: LocalEmbedder, load_s: float
) -> Corpus:
    store = await SqlStore.open(StoreSettings(data_dir=data))
    try:
        start = time.perf_counter()
        report = await ingest(
            [docs],
            store,
            embedder,
            tokenizer=TOKENIZER,
            count_tokens=estimate_tokens,
            settings=settings,
        )
        seconds = time.perf_counter() - start
        if report.failed:
            raise SystemExit(f"ingest failed: {report.failed[0].reason}")
        chunks, vectors = await store.kb_matrix(embedder.name)
    finally:
        await store.aclose()
    return Corpus(chunks, vectors, [c.entropy for c in chunks], seconds, load_s)


def check_reachable(questions: list[Question], chunks: list[ChunkRecord]) -> None:
    """Fail loudly if a fact is not whole inside one chunk: no context could contain it."""
    texts = [normalise(c.text) for c in chunks]
    cut = [
        f"{q.id}: {f!r}"
        for q in questions
        for f in q.facts
        if not any(normalise(f) in text for text in texts)
    ]
    if cut:
        raise SystemExit("facts no single chunk contains:\n  " + "\n  ".join(cut))


def workload(questions: list[Question]) -> list[Subtask]:
    """The questions, a synthesis step after every two, then the steps that compute or
    reformat."""
    subtasks: list[Subtask] = []
    for i, question in enumerate(questions):
        subtasks.append(Subtask(question.question, False, question, i))
        if i % 2 == 1:
            subtasks.append(Subtask(SYNTHESES[(i // 2) % len(SYNTHESES)], True, None))
    subtasks += [Subtask(text, deps, None) for text, deps in OTHER_STEPS]
    return subtasks


def naive(cosines: npt.NDArray[np.float32], k: int) -> list[list[int]]:
    """The ``k`` nearest chunks of every subtask (one row of ``cosines`` each), nearest first."""
    nearest = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
    return [row.tolist() for row in nearest]


def pool_of(corpus: Corpus) -> Pool:
    """The corpus as stage 3's pool (chunk ``i`` has id ``str(i)``)."""
    chunks = corpus.chunks
    return Pool(
        ids=tuple(str(i) for i in range(len(chunks))),
        kinds=tuple("chunk" for _ in chunks),
        titles=tuple(c.path for c in chunks),
        sources=tuple(c.path for c in chunks),
        texts=tuple(c.text for c in chunks),
        tokens=np.asarray([c.tokens for c in chunks], dtype=np.int64),
        tokenizers=tuple(TOKENIZER for _ in chunks),
        entropy=np.asarray(corpus.entropy, dtype=np.float64),
        agents=tuple("" for _ in chunks),
        matrix=corpus.vectors,
        embedder="all-MiniLM-L6-v2",
    )


def optimised(
    pool: Pool,
    queries: npt.NDArray[np.float32],
    gate: list[bool],
    settings: ContextSettings,
    budget: int,
) -> tuple[list[list[int]], list[float]]:
    """What stage 3 gives every subtask (:func:`~automatos.retrieval.choose.choose`, the
    engine's own selection: the entropy and relevance cuts over the whole pool, then the
    optimiser) when the gate lets it through, none to the others; and the milliseconds each
    selection took."""
    chosen: list[list[int]] = []
    times: list[float] = []
    for query, needed in zip(queries, gate, strict=True):
        if not needed:
            chosen.append([])
            continue
        start = time.perf_counter()
        record = choose(
            pool,
            query,
            subtask_id="s",
            agent="a",
            budget=budget,
            settings=settings,
            tokenizer=TOKENIZER,
            count_tokens=estimate_tokens,
        )
        times.append((time.perf_counter() - start) * 1e3)
        chosen.append([int(item.id) for item in record.items])
    return chosen, times


def recall(
    subtasks: list[Subtask], chosen: list[list[int]], texts: list[str], half: int | None = None
) -> float:
    """Of all the questions' facts (of the even or odd questions only, with ``half`` 0 or 1),
    the fraction found whole in a chunk given to its subtask."""
    found = total = 0
    for subtask, picked in zip(subtasks, chosen, strict=True):
        if subtask.question is None:
            continue
        if half is not None and subtask.index % 2 != half:
            continue
        for fact in subtask.question.facts:
            total += 1
            found += any(normalise(fact) in texts[i] for i in picked)
    return found / total


def tokens(chosen: list[list[int]], chunks: list[ChunkRecord]) -> int:
    """Tokens of context given over all subtasks."""
    return sum(chunks[i].tokens for picked in chosen for i in picked)


def selection_timing(
    n: int = 10_000,
    dim: int = 384,
    budget: int = 4_000,
    relevant: int = 200,
    repeats: int = 30,
    seed: int = 0,
    settings: OptimizerSettings | None = None,
    context: ContextSettings | None = None,
) -> dict[str, float]:
    """Time :func:`optimize` over every item of a synthetic corpus, and stage 3's
    :func:`~automatos.retrieval.choose.choose` (``stage_ms_p50``) over it as a pool.

    ``n`` random unit vectors, of which ``relevant`` lean towards the query (cosine about
    0.75-0.95), texts of 150 words from a 2,000-word vocabulary, 60-400 tokens each; entropy is
    precomputed as a store would keep it. Returns the median and 90th percentile in
    milliseconds, the median when the drop records are also built, and the counts.
    """
    rng = np.random.default_rng(seed)
    query = rng.standard_normal(dim).astype(np.float32)
    query /= np.linalg.norm(query)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    lean = rng.uniform(0.75, 0.95, size=(relevant, 1)).astype(np.float32)
    vectors[:relevant] = lean * query + np.sqrt(1 - lean**2) * vectors[:relevant]
    vocabulary = [f"w{i}" for i in range(2_000)]
    candidates = []
    for i in range(n):
        text = " ".join(vocabulary[j] for j in rng.integers(0, 2_000, size=150))
        candidates.append(
            Candidate(
                f"c{i}", text, int(rng.integers(60, 400)), vectors[i], entropy=word_entropy(text)
            )
        )
    times, explained = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        selection = optimize(query, candidates, budget, settings)
        times.append((time.perf_counter() - start) * 1e3)
        dropped = len(selection.dropped)
        explained.append((time.perf_counter() - start) * 1e3)
    # The engine's own path (stage 3): the cuts over the whole pool, then the optimiser on
    # the survivors, every drop recorded.
    pool = Pool(
        ids=tuple(c.id for c in candidates),
        kinds=tuple("chunk" for _ in candidates),
        titles=tuple(c.id for c in candidates),
        sources=tuple(c.id for c in candidates),
        texts=tuple(c.text for c in candidates),
        tokens=np.asarray([c.tokens for c in candidates], dtype=np.int64),
        tokenizers=tuple(TOKENIZER for _ in candidates),
        entropy=np.asarray([c.entropy for c in candidates], dtype=np.float64),
        agents=tuple("" for _ in candidates),
        matrix=vectors,
        embedder="synthetic",
    )
    staged = []
    for _ in range(repeats):
        start = time.perf_counter()
        choose(
            pool,
            query,
            subtask_id="s",
            agent="a",
            budget=budget,
            settings=context or ContextSettings(),
            tokenizer=TOKENIZER,
            count_tokens=estimate_tokens,
        )
        staged.append((time.perf_counter() - start) * 1e3)
    times.sort()
    explained.sort()
    staged.sort()
    return {
        "stage_ms_p50": staged[len(staged) // 2],
        "select_ms_p50": times[len(times) // 2],
        "select_ms_p90": times[int(len(times) * 0.9)],
        "select_and_explain_ms_p50": explained[len(explained) // 2],
        "chosen": float(len(selection.chosen)),
        "dropped": float(dropped),
    }


def _p50(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(
    min_relevance: float, margin: float | None, budget: int, max_candidates: int, path: Path
) -> dict[str, object]:
    """Ingest the corpus, run both sides over the workload and summarise."""
    shipped = ContextSettings()
    topics: dict[str, str] = pydoc_data.topics.topics
    questions = load_questions(path, topics)
    subtasks = workload(questions)
    embedder = LocalEmbedder(batch_size=EmbeddingSettings().batch_size)
    try:
        with tempfile.TemporaryDirectory(prefix="automatos-context-") as directory:
            corpus = ingest_corpus(topics, Path(directory), shipped, embedder)
        queries = aio.run(embedder.embed([s.description for s in subtasks]))
    finally:
        embedder.close()
    check_reachable(questions, corpus.chunks)
    pool = pool_of(corpus)
    cosines = queries @ corpus.vectors.T
    gate = [needs_context(s.description, s.has_dependencies) for s in subtasks]
    texts = [normalise(c.text) for c in corpus.chunks]
    n_chunks = len(corpus.chunks)
    _say(
        f"corpus {CORPUS}: {len(topics)} topics, {n_chunks} chunks, "
        f"{sum(c.tokens for c in corpus.chunks)} tokens; model loaded in "
        f"{corpus.load_seconds:.1f} s, ingest {corpus.seconds:.1f} s"
    )
    asked = [g for g, s in zip(gate, subtasks, strict=True) if s.question is not None]
    _say(
        f"workload: {len(subtasks)} subtasks ({len(asked)} questions, "
        f"{sum(len(q.facts) for q in questions)} facts); needs_context says yes to "
        f"{sum(gate)} ({sum(asked)} of the questions), no to {len(gate) - sum(gate)}; "
        f"budget {budget} tokens, at most {max_candidates} candidates"
    )

    plain = naive(cosines, shipped.naive_k)
    tokens_naive, recall_naive = tokens(plain, corpus.chunks), recall(subtasks, plain, texts)
    halves_naive = [recall(subtasks, plain, texts, half) for half in (0, 1)]
    _say(
        f"naive top-{shipped.naive_k}: tokens {tokens_naive}, recall {recall_naive:.3f} "
        f"(even questions {halves_naive[0]:.3f}, odd {halves_naive[1]:.3f})"
    )
    _say(
        "optimised (stage 3's selection), by relevance cut (recall: fraction of the facts; "
        "Δ: points against naive, all / even / odd questions; empty: questions given nothing; "
        "ms: selection per subtask, p50)"
    )
    _say("min_rel  margin  tokens  reduction  recall  Δall   Δeven  Δodd  chunks/q  empty  ms_p50")
    rows: dict[tuple[float, float | None], tuple[int, float, float]] = {}
    for floor, gap in dict.fromkeys((*GRID, (min_relevance, margin))):
        settings = shipped.model_copy(
            update={
                "min_relevance": floor,
                "relevance_margin": gap,
                "max_candidates": max_candidates,
            }
        )
        chosen, times = optimised(pool, queries, gate, settings, budget)
        spent, found = tokens(chosen, corpus.chunks), recall(subtasks, chosen, texts)
        halves = [recall(subtasks, chosen, texts, half) - halves_naive[half] for half in (0, 1)]
        given = [len(c) for c, s in zip(chosen, subtasks, strict=True) if s.question]
        rows[(floor, gap)] = (spent, 1 - spent / tokens_naive, found)
        _say(
            f"{floor:7.2f}  {'-' if gap is None else f'{gap:.2f}':>6}  {spent:6d}  "
            f"{1 - spent / tokens_naive:9.1%}  {found:6.3f}  {(found - recall_naive) * 100:+5.1f}  "
            f"{halves[0] * 100:+5.1f}  {halves[1] * 100:+5.1f}  {np.mean(given):8.1f}  "
            f"{given.count(0):5d}  {_p50(times):6.2f}"
        )
    timing = selection_timing(settings=optimizer_settings(shipped), context=shipped)
    _say("synthetic 10k: " + "  ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    spent, reduction, found = rows[(min_relevance, margin)]
    return {
        "tokens_naive": tokens_naive,
        "tokens_optimized": spent,
        "reduction": round(reduction, 4),
        "recall_naive": round(recall_naive, 4),
        "recall_optimized": round(found, 4),
        "select_ms_p50_10k_chunks": round(timing["select_ms_p50"], 3),
        "stage_select_ms_p50_10k_chunks": round(timing["stage_ms_p50"], 3),
        "ingest_chunks_per_s": round(n_chunks / corpus.seconds, 1),
        "corpus": CORPUS,
        "chunks": n_chunks,
        "questions": len(questions),
        "subtasks": len(subtasks),
        "min_relevance": min_relevance,
        "relevance_margin": margin,
        "budget_tokens": budget,
        "max_candidates": max_candidates,
    }


def _margin(text: str) -> float | None:
    return None if text.lower() in ("none", "off", "") else float(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--min-relevance",
        type=float,
        default=ContextSettings().min_relevance,
        help="the relevance cut for the JSON line (default: the shipped setting)",
    )
    parser.add_argument(
        "--relevance-margin",
        type=_margin,
        default=ContextSettings().relevance_margin,
        help="the cut relative to the best match for the JSON line, or none (default: shipped)",
    )
    parser.add_argument("--budget", type=int, default=BUDGET, help="tokens per subtask")
    parser.add_argument(
        "--max-candidates",
        type=int,
        default=ContextSettings().max_candidates,
        help="chunks past the relevance cut handed to the optimiser, nearest first",
    )
    parser.add_argument("--questions", type=Path, default=QUESTIONS, help="the question set")
    args = parser.parse_args()
    figures = main(
        args.min_relevance,
        args.relevance_margin,
        args.budget,
        args.max_candidates,
        args.questions,
    )
    print(json.dumps(figures))
