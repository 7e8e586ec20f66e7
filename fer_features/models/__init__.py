"""The trained models shipped inside the package, and what ``fer models`` says of them and of yours.

The package carries two trained pipelines as package data, each a skops file with its model
card beside it (``fer_features/models/NAME.skops`` and ``NAME.json``), found through
:func:`fer_features.persist.bundled.bundled_models_dir` (``importlib.resources``), never by a path
relative to the working folder:

* ``default``: a compact CNN (distilled from an ensemble of four networks, then fine-tuned for
  the shifts of real photos, five fine-tunes and their start averaged into one network, then
  averaged 3:1 with its fine-tune on the FERPlus votes) run in int8, its
  probabilities divided by the square root of the Training class frequencies and
  temperature-scaled on PublicTest; what ``make run`` builds.
* ``accurate``: three CNNs in int8, their probabilities averaged and divided by the Training
  class frequencies to the power 1/4; what ``make accurate`` builds.

A name picks a bundled model wherever a model is asked for (``fer predict --model accurate``,
``Recognizer("accurate")``, ``$FER_MODEL=accurate``); a path picks a file of yours
(:func:`fer_features.persist.bundled.resolve_model`). :func:`list_models` describes both kinds from
their cards, and :func:`compare_cards` tells whether a model you trained scores as a bundled
one does.
"""

from __future__ import annotations

import os
from pathlib import Path

from fer_features.config import (
    BUNDLED_MODELS,
    CHECKPOINT_SUFFIX,
    MODEL_SUFFIX,
    USAGES,
)
from fer_features.persist.bundled import bundled_model_path, resolve_model
from fer_features.persist.cards import card_path, read_card
from fer_features.persist.files import PICKLE_SUFFIXES

#: The metrics :func:`compare_cards` compares, per split.
COMPARED_METRICS: tuple[str, ...] = ("accuracy", "macro_f1")


def model_info(path: str | os.PathLike, *, name: str | None = None, source: str = "file") -> dict:
    """What a model's card says of it, in the terms of ``fer models``.

    Parameters
    ----------
    path : str or path-like
        The model file (``.skops`` or ``.joblib``); its card is the ``.json`` beside it.
    name : str, optional
        Shown name; default the file's stem.
    source : {'bundled', 'file'}, default='file'

    Returns
    -------
    dict
        ``name``, ``source``, ``path``, ``size_mb`` (the model file, in MB of 10^6 bytes), ``classes`` (list of
        str), ``features`` and ``classifier``; from the PrivateTest metrics ``accuracy``,
        ``macro_f1`` and ``crops_per_second`` (PrivateTest faces over the seconds ``fer train``
        took to classify them, on the machine of ``machine``); ``publictest_accuracy``;
        ``data`` (source file and the first 12 hex digits of its fingerprint); ``command``
        (what made it) and ``created``. Values the card lacks are None.
    """
    path = Path(path)
    card = read_card(path)
    private = card.get("metrics", {}).get("PrivateTest", {})
    public = card.get("metrics", {}).get("PublicTest", {})
    seconds = private.get("predict_seconds")
    data = card.get("data", {})
    fingerprint = str(data.get("fingerprint") or "")[:12]
    return {
        "name": name or path.stem,
        "source": source,
        "path": str(path),
        "size_mb": round(path.stat().st_size / 1e6, 1) if path.is_file() else None,
        "classes": card.get("classes"),
        "features": card.get("features"),
        "classifier": card.get("classifier"),
        "accuracy": private.get("accuracy"),
        "macro_f1": private.get("macro_f1"),
        "crops_per_second": round(private["n"] / seconds) if seconds and private.get("n") else None,
        "publictest_accuracy": public.get("accuracy"),
        "data": f"{data['source']} ({fingerprint})" if data.get("source") else None,
        "command": card.get("command"),
        "created": card.get("created"),
        "machine": card.get("machine"),
    }


def list_models(folder: str | os.PathLike | None = "models") -> list[dict]:
    """The bundled models, then the model files in ``folder``, each described by :func:`model_info`.

    Parameters
    ----------
    folder : str or path-like, optional
        A folder of your models (``*.skops``, CNN checkpoints ``*.pt``, pickles ``*.joblib``; not
        searched recursively);
        default ``./models``; None for the bundled models only. A missing folder lists none.

    Returns
    -------
    list of dict
    """
    rows = [model_info(bundled_model_path(name), name=name, source="bundled") for name in BUNDLED_MODELS]
    if folder is not None and Path(folder).is_dir():
        suffixes = (MODEL_SUFFIX, CHECKPOINT_SUFFIX, *PICKLE_SUFFIXES)
        files = sorted(p for p in Path(folder).iterdir() if p.suffix in suffixes and p.is_file())
        rows += [model_info(p) for p in files]
    return rows


def compare_cards(
    model: str | os.PathLike, reference: str | os.PathLike, *, tolerance: float = 0.0005, close: float = 0.003
) -> dict:
    """Whether a model scores as another does, by their cards: accuracy and macro-F1 on PublicTest and PrivateTest.

    ``make run`` uses it to say whether the default it rebuilt from FER2013 scores the same as
    the bundled ``default``. On one machine a rebuild scores exactly the same; int8 arithmetic
    differs a little between CPUs (AMX, VNNI, AVX2), which moves a few faces, so the verdict
    also says whether the scores are ``close`` and which CPUs the two cards name.

    Parameters
    ----------
    model, reference : str or path-like
        Model files (``.skops``) with cards beside them; a bundled model's name for either.
    tolerance : float, default=0.0005
        Largest difference counted as the same (0.0005 is under two faces of PrivateTest's 3,589).
    close : float, default=0.003
        Largest difference counted as close (about ten faces).

    Returns
    -------
    dict
        ``verdict`` (``'same'``, ``'close'`` or ``'different'``), ``same`` (bool), ``rows`` (one
        per split and metric: ``split``, ``metric``, ``model``, ``reference``, ``difference``),
        ``model`` and ``reference`` (their paths), ``cpus`` (the CPU each card names, or None).

    Raises
    ------
    ValueError
        If either card is missing or has none of these metrics.
    """
    paths = resolve_model(model), resolve_model(reference)
    cards = [read_card(p) for p in paths]
    for path, card in zip(paths, cards):
        if not card.get("metrics"):
            raise ValueError(f"{path}: no model card with metrics beside it ({card_path(path)})")
    rows = []
    for split in USAGES[1:]:
        for metric in COMPARED_METRICS:
            a = cards[0]["metrics"].get(split, {}).get(metric)
            b = cards[1]["metrics"].get(split, {}).get(metric)
            if a is not None and b is not None:
                rows.append({"split": split, "metric": metric, "model": a, "reference": b, "difference": a - b})
    if not rows:
        raise ValueError(f"{paths[0]} and {paths[1]}: their cards share no PublicTest or PrivateTest metric")
    largest = max(abs(r["difference"]) for r in rows)
    verdict = "same" if largest <= tolerance else "close" if largest <= close else "different"
    cpus = [(card.get("machine") or {}).get("cpu") for card in cards]
    return {"verdict": verdict, "same": verdict == "same", "rows": rows, "model": str(paths[0]),
            "reference": str(paths[1]), "cpus": cpus}  # fmt: skip
