"""``python -m fer_features.cli``: the ``fer`` command."""

from fer_features.cli import main

main()
