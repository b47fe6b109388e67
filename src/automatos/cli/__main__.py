"""``python -m automatos.cli``: the ``automatos`` command."""

from automatos.cli import main

main()
