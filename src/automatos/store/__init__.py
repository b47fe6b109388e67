"""Durable records: runs, agents and learned metrics. The only package that imports SQLAlchemy."""

from automatos.store.base import OVERALL, RunDetail, RunSummary, Store, WriteBatch
from automatos.store.sql import SqlStore

__all__ = ["OVERALL", "RunDetail", "RunSummary", "SqlStore", "Store", "WriteBatch"]
