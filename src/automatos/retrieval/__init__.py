"""Retrieval for stage 3: choosing context items for a subtask under a token budget."""
