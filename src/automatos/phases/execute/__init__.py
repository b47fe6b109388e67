"""EXECUTE: stage 4 (run subtasks through a TaskRunner)."""
