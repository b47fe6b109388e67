"""EVALUATE: stage 7 (quality assessment of the real outputs)."""
