"""Durable records: runs, agents and learned metrics.

Only :mod:`automatos.store.sql` (and the migrations) import SQLAlchemy; it is imported when a
store is opened, not with the package.
"""

from automatos.store.base import OVERALL, RunDetail, RunSummary, Store, WriteBatch
from automatos.store.writer import BatchWriter

__all__ = ["OVERALL", "BatchWriter", "RunDetail", "RunSummary", "Store", "WriteBatch"]
