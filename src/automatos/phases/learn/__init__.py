"""LEARN: stage 9 (response); learning and memory arrive with later stages."""
