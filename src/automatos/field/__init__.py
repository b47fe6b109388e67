"""The workflow's shared context: findings agents write and later subtasks read (stage 4b)."""
