"""The verbs of the engine: one package per phase, one module per stage."""
