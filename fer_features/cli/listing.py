"""``fer list``: the feature extractors, classifier heads and face detectors that options can name."""

from __future__ import annotations

from fer_features.cli.common import app
from fer_features.cli.consoles import console


@app.command("list")
def list_choices() -> None:
    """List the feature extractors, classifiers and face detectors that options can name."""
    from fer_features.faces.detectors import list_detectors
    from fer_features.features import list_features
    from fer_features.heads.registry import list_classifiers

    console.print("[bold]features[/] (join with '+', e.g. hog+lbp+landmarks)")
    for name, desc in list_features().items():
        console.print(f"  {name:12s} {desc}", highlight=False)
    console.print("[bold]classifiers[/]")
    for name, desc in list_classifiers().items():
        console.print(f"  {name:12s} {desc}", highlight=False)
    console.print("[bold]face detectors[/] (fer predict / fer serve --detector)")
    for name, desc in list_detectors().items():
        console.print(f"  {name:12s} {desc}", highlight=False)
