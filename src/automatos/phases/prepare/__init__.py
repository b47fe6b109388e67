"""PREPARE: what each subtask gets before it runs (stage 3b, the prompt versions, for now)."""
