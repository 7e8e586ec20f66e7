"""``python -m fer_features.cli``: the ``fer`` command."""

from fer_features.cli import app

app(prog_name="fer")
