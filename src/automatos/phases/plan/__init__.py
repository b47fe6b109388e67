"""PLAN: stage 1 (decompose) and stage 2 (select agents)."""
