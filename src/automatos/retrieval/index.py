"""Exact nearest-neighbour search: one matrix product over every item.

For the sizes a workspace's knowledge base and memories reach (tens of thousands of chunks of
384 dimensions), one ``matrix @ query`` takes milliseconds and finds the true nearest items;
an approximate index would trade that exactness for speed not needed here. The top ``k`` are
found with :func:`numpy.argpartition` (linear), then only they are sorted.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from automatos.retrieval.base import Hit, Vectors

__all__ = ["ExactIndex"]


class ExactIndex:
    """A :class:`~automatos.retrieval.base.VectorIndex` over one ``(n, d)`` float32 matrix of
    unit rows, searched exactly. The matrix is kept, not copied: the caller must not change
    it while the index is in use.

    Raises:
        ValueError: the matrix is not a 2-D float32 array of finite values.
    """

    def __init__(self, matrix: Vectors) -> None:
        if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
            shape = getattr(matrix, "shape", type(matrix).__name__)
            raise ValueError(f"an index needs a 2-D matrix, one row per item; got {shape}")
        if matrix.dtype != np.float32:
            raise ValueError(f"an index needs a float32 matrix; got {matrix.dtype}")
        if not np.isfinite(matrix).all():
            raise ValueError("the index's matrix holds NaN or infinite values")
        self._matrix = np.ascontiguousarray(matrix)

    def __len__(self) -> int:
        """Items indexed."""
        return int(self._matrix.shape[0])

    @property
    def dimension(self) -> int:
        """The dimension of the indexed vectors (0 for an index made of a ``(0, 0)`` matrix)."""
        return int(self._matrix.shape[1])

    def scores(self, query: Vectors) -> npt.NDArray[np.float32]:
        """The cosine of every item with ``query``, by row.

        Raises:
            ValueError: ``query`` is not one finite vector (shape ``(d,)`` or ``(1, d)``) of
                the index's dimension.
        """
        vector = self._query(query)
        if not len(self):
            return np.zeros(0, dtype=np.float32)
        scores: npt.NDArray[np.float32] = self._matrix @ vector
        return scores

    def search(self, query: Vectors, k: int, min_score: float = -1.0) -> list[Hit]:
        """At most ``k`` items whose cosine with ``query`` is above ``min_score`` (strictly),
        best first; equal scores by row, the lower first, also at the ``k``-th place.

        Raises:
            ValueError: as :meth:`scores`.
        """
        scores = self.scores(query)
        if k <= 0 or not scores.size:
            return []
        rows = np.flatnonzero(scores > min_score)
        if rows.size > k:
            candidates = scores[rows]
            # The k-th best score; items above it are in, items equal to it by row.
            kth = candidates[np.argpartition(-candidates, k - 1)[k - 1]]
            above = rows[candidates > kth]
            tied = rows[candidates == kth][: k - above.size]
            rows = np.concatenate([above, tied])
        order = np.lexsort((rows, -scores[rows]))
        return [Hit(row=int(rows[i]), score=float(scores[rows[i]])) for i in order]

    def _query(self, query: Vectors) -> npt.NDArray[np.float32]:
        vector = np.asarray(query, dtype=np.float32)
        if vector.ndim == 2 and vector.shape[0] == 1:
            vector = vector[0]
        if vector.ndim != 1:
            raise ValueError(
                f"a query is one vector, of shape (d,) or (1, d); got shape {vector.shape}"
            )
        if self.dimension and vector.shape[0] != self.dimension:
            raise ValueError(
                f"the query has {vector.shape[0]} dimensions but the index's vectors have "
                f"{self.dimension}"
            )
        if not np.isfinite(vector).all():
            raise ValueError("the query holds NaN or infinite values")
        return vector
