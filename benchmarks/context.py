"""Context selection (issue 13, in progress): the optimiser of stage 3 over 10,000 chunks.

The optimiser (:mod:`automatos.retrieval.optimizer`) is built; the embedder, the knowledge
base and stage 3 are not yet, so this measures selection alone on a synthetic corpus: random
unit vectors of dimension 384 (all-MiniLM-L6-v2's), some leaning towards the query, texts of
150 words with their entropy precomputed as a store would keep it.

Target: selection over 10,000 chunks <= 20 ms p50. The last line of output is one JSON object.
"""

from __future__ import annotations

import json
import time

import numpy as np

from automatos.retrieval.optimizer import Candidate, optimize, word_entropy


def selection_timing(
    n: int = 10_000,
    dim: int = 384,
    budget: int = 4_000,
    relevant: int = 200,
    repeats: int = 30,
    seed: int = 0,
) -> dict[str, float]:
    """Time :func:`optimize` on a synthetic corpus.

    ``n`` random unit vectors, of which ``relevant`` lean towards the query (cosine about
    0.7–0.9), texts of 150 words from a 2,000-word vocabulary, 60–400 tokens each; entropy is
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
        selection = optimize(query, candidates, budget)
        times.append((time.perf_counter() - start) * 1e3)
        dropped = len(selection.dropped)
        explained.append((time.perf_counter() - start) * 1e3)
    times.sort()
    explained.sort()
    return {
        "select_ms_p50": times[len(times) // 2],
        "select_ms_p90": times[int(len(times) * 0.9)],
        "select_and_explain_ms_p50": explained[len(explained) // 2],
        "chosen": float(len(selection.chosen)),
        "dropped": float(dropped),
    }


def main() -> None:
    figures = {f"relevant_{k}": selection_timing(relevant=k) for k in (0, 200, 500)}
    for name, figure in figures.items():
        print(f"{name:14} " + "  ".join(f"{k} {v:.1f}" for k, v in figure.items()))
    print(
        json.dumps(
            {"select_ms_p50_10k_chunks": figures["relevant_200"]["select_ms_p50"], **figures}
        )
    )


if __name__ == "__main__":
    main()
