"""A whole ``fer benchmark`` run: the grid with its overrides, the data, the CNN, the cells, the results.

:func:`run_grid` is what the command calls; :func:`make_grid` and :func:`check_run` check its
options before any data is read.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from fer_features.benchmark.grid import Grid, load_grid
from fer_features.config import (
    BACKENDS,
    BENCHMARK_CACHE,
    DEFAULT_CNN_CHECKPOINT,
    DEFAULT_RESULTS_DIR,
    default_cache_dir,
)
from fer_features.data.fer2013 import DataError


class BenchmarkError(ValueError):
    """A benchmark cannot run: no Training data, a missing checkpoint, an unreachable cluster."""


def make_grid(grid_file: str | os.PathLike | None = None, overrides: dict | None = None, params: dict | None = None) -> Grid:
    """The grid of a TOML/YAML file (or the default one), with ``overrides`` set on it, validated.

    Parameters
    ----------
    grid_file : path-like, optional
        See :func:`~fer_features.benchmark.grid.load_grid`.
    overrides : dict, optional
        :class:`~fer_features.benchmark.grid.Grid` fields to set (e.g. from options); ``pca=0``
        means none.
    params : dict, optional
        ``{"feature_params": {name: {param: value}}, "classifier_params": {...}}`` merged into the
        file's tables: a parameter given here replaces the file's value of that parameter only.

    Returns
    -------
    Grid

    Raises
    ------
    ValueError, FileNotFoundError
        For a bad file, name or value.
    """
    grid = load_grid(grid_file) if grid_file else Grid()
    for key, value in (overrides or {}).items():
        setattr(grid, key, (value or None) if key == "pca" else value)
    for key, given in (params or {}).items():
        merged = {name: dict(values) for name, values in getattr(grid, key).items()}
        for name, values in given.items():
            merged.setdefault(name, {}).update(values)
        setattr(grid, key, merged)
    return grid.validate()


def check_run(grid: Grid, *, backend: str = "local", scheduler: str | None = None, device: str = "auto") -> None:
    """Check what a run needs before data is read: a torch device for the CNN, a backend.

    Raises
    ------
    ValueError
        For a missing GPU, an unknown backend, or a scheduler without the Dask backend.
    """
    if grid.needs_cnn:
        from fer_features.torch_utils import resolve_device

        resolve_device(device)
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if backend == "local" and scheduler:
        raise ValueError("--scheduler is for --backend dask")


def run_grid(
    data,
    grid: Grid,
    *,
    limit: int = 0,
    cnn_checkpoint: str | os.PathLike = DEFAULT_CNN_CHECKPOINT,
    cnn_params: dict | None = None,
    cache_dir: str | os.PathLike | None = None,
    n_jobs: int = -1,
    backend: str = "local",
    scheduler: str | None = None,
    force: bool = False,
    results_dir: str | os.PathLike = DEFAULT_RESULTS_DIR,
    report: str | os.PathLike | None = None,
    report_section: str | None = None,
    data_format: str = "auto",
    load_options: dict | None = None,
    command: str | None = None,
    on_event=None,
):
    """Run a benchmark grid on a data set and write its results.

    Parameters
    ----------
    data : path-like or FERDataset
    grid : Grid
        From :func:`make_grid`.
    limit : int, default=0
        At most this many images per split (0: all).
    cnn_checkpoint : path-like, default='models/cnn-small.pt'
        The CNN of the ``cnn`` feature and the baseline; trained first (``cnn_params``) if missing.
    cnn_params : dict, optional
        :class:`~fer_features.cnn.CNNClassifier` parameters (``preset``, ``epochs``, ``device``).
    cache_dir : path-like, optional
        Feature and cell cache; default ``~/.cache/fer-features/benchmark``.
    n_jobs : int, default=-1
        Cells at once; -1 one per core.
    backend, scheduler, force
        See :func:`~fer_features.benchmark.run.run_benchmark`.
    results_dir : path-like, default='benchmarks/results'
        Where the CSV, JSON, Markdown and PNG results go.
    report : path-like, optional
        Also write this Markdown report (the repository's BENCHMARKS.md).
    report_section : str, optional
        Write the report as this section of ``report``, keeping the rest of the file
        (:func:`~fer_features.benchmark.report.write_benchmarks_md`).
    data_format, load_options, command
        As in :func:`fer_features.training.run.train`.
    on_event : callable, optional
        ``on_event(kind, info)``: the loading and CNN-training events of
        :func:`~fer_features.training.run.train`, ``note`` (``text``), ``cells`` (``total``), and the
        events of :func:`~fer_features.benchmark.run.run_benchmark`.

    Returns
    -------
    records : list of dict
        One per cell (see :func:`~fer_features.benchmark.run.run_benchmark`).
    meta : dict
        Command, date, machine, library versions, data, grid, settings, wall time.
    paths : dict of {str: Path}
        The files written.

    Raises
    ------
    DataError
        For data that cannot be read or has no PublicTest split to train the CNN on.
    BenchmarkError
        When the cells cannot run.
    """
    from fer_features.benchmark.report import write_benchmarks_md, write_results
    from fer_features.benchmark.run import run_benchmark
    from fer_features.data.sources import load_data
    from fer_features.persist.cards import library_versions, machine_info
    from fer_features.training.cnn import train_cnn_checkpoint

    emit = on_event or (lambda kind, info: None)
    t0 = time.perf_counter()
    cnn_params = dict(cnn_params or {})
    device = cnn_params.get("device", "auto")
    check_run(grid, backend=backend, scheduler=scheduler, device=device)
    load_options = {"seed": grid.seed, **(load_options or {})}
    dataset = load_data(data, data_format, on_event=emit, limit=limit, **load_options)
    cnn_checkpoint = Path(cnn_checkpoint)
    if grid.needs_cnn and not cnn_checkpoint.is_file():
        X_train, y_train = dataset.split("Training")
        X_val, y_val = dataset.split("PublicTest")
        if len(X_val) == 0:
            raise DataError(f"{data}: has no PublicTest images, which select the CNN's best epoch")
        params = {"preset": "small", **cnn_params}
        emit("note", {"text": f"{cnn_checkpoint} does not exist: training the CNN first ({params['preset']} preset, at most "
                              f"{params.get('epochs', 'the default')} epochs; this dominates the benchmark's time: ~30 min on "
                              "2 CPU cores for the small preset)"})  # fmt: skip
        train_cnn_checkpoint(X_train, y_train, X_val, y_val, cnn_checkpoint, seed=grid.seed,
                             resume_path=cnn_checkpoint.with_suffix(".resume.pt"), on_event=emit, **params)  # fmt: skip
    cells = grid.cells()
    workers = n_jobs if n_jobs > 0 else (os.cpu_count() or 1)
    emit("note", {"text": f"benchmark: {len(cells)} cells on {len(dataset):,} faces ({backend} backend)"})
    emit("cells", {"total": len(cells)})
    try:
        records = run_benchmark(
            dataset, grid, cache_dir=cache_dir or default_cache_dir(BENCHMARK_CACHE),
            cnn_checkpoint=cnn_checkpoint if grid.needs_cnn else None, n_jobs=workers, backend=backend,
            scheduler=scheduler, device=device, force=force, on_event=emit,
        )  # fmt: skip
    except ValueError as exc:
        raise BenchmarkError(str(exc)) from exc
    finally:
        emit("cells-done", {})
    checkpoint_text = cnn_checkpoint if grid.needs_cnn else "not used"
    meta = {
        "command": command,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine_info(),
        "library_versions": library_versions(("dask", "distributed", "pandas", "matplotlib")),
        "data": {"source": str(data), "format": data_format, "fingerprint": dataset.fingerprint,
                 "counts": dataset.counts(), "limit": limit},  # fmt: skip
        "grid": dataclasses.asdict(grid),
        "settings_text": f"PCA {grid.pca or 'none'}, seed {grid.seed}, class weights {grid.class_weight or 'none'}, "
        f"CV folds {grid.cv or 'none'}, CNN checkpoint {checkpoint_text}, {backend} backend, {workers} cells at once"
        + _params_text("feature parameters", grid.feature_params) + _params_text("classifier parameters", grid.classifier_params),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cells_computed": sum(not r.get("cached") for r in records),
        "cells_cached": sum(bool(r.get("cached")) for r in records),
    }
    paths = write_results(records, meta, results_dir)
    if report is not None:
        write_benchmarks_md(records, meta, report, paths, section=report_section)
    return records, meta, paths


def _params_text(what: str, params: dict[str, dict]) -> str:
    """``", feature parameters cnn.tta=flip"`` for the grid's parameters; empty without any."""
    items = [f"{name}.{key}={value}" for name, values in sorted(params.items()) for key, value in sorted(values.items())]
    return f", {what} {' '.join(items)}" if items else ""
