"""Running a benchmark grid: one extraction per feature, then one fit per cell, in parallel.

Each feature extractor runs once over every image of the data set, and its matrix is cached on
disk. Most extractors learn nothing from the data (HOG, LBP and landmark geometry are fixed
functions, and the CNN embedding comes from a network trained beforehand on Training only);
one that does (``sift-bovw``'s vocabulary) is fitted on the Training rows only, and those rows
are part of its cache key. (With ``cv``, the folds share that Training-fitted vocabulary: the
k-means sees the held-out fold's descriptors, not its labels; ``fer cv`` refits it per fold.) A cell
then concatenates the blocks it names and fits the same head as ``fer train``
(:func:`fer_features.training.pipelines.build_head`: scaling → PCA → classifier) on the Training rows,
scores PublicTest and PrivateTest, and stores its record. Cells run through joblib: local
processes (loky) by default, or a Dask cluster (``backend='dask'``).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp

from fer_features.benchmark.cache import BenchmarkCache, extractor_key, file_digest
from fer_features.benchmark.grid import Cell, Grid
from fer_features.config import BACKENDS, CACHE_VERSION, TTA_REPORTS, USAGES
from fer_features.data.fer2013 import FERDataset
from fer_features.persist.cards import machine_info


class PeakMemory:
    """Peak resident memory (RSS) of this process while a block runs, sampled every 20 ms.

    Uses psutil (a dependency of dask.distributed) and falls back to the process's lifetime
    peak (``resource.getrusage``) without it. ``peak_mib`` is in MiB after the block ends.
    """

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.peak_mib = float("nan")

    def __enter__(self) -> PeakMemory:
        try:
            import psutil
        except ImportError:  # pragma: no cover - psutil comes with distributed
            self._proc = None
            return self
        self._proc = psutil.Process()
        self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._proc.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self._proc is None:  # pragma: no cover
            import resource

            self.peak_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            return
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.peak_mib = round(self._peak / 2**20, 1)


def _split_index(dataset: FERDataset) -> dict[str, np.ndarray]:
    return {u: np.flatnonzero(dataset.usage == u) for u in USAGES}


def _scores(model, X, labels) -> dict:
    from fer_features.training.evaluation import evaluate

    m = evaluate(model, X, labels)
    return {
        "n": m["n"],
        "accuracy": m["accuracy"],
        "macro_f1": m["macro_f1"],
        "predict_seconds": m["predict_seconds"],
        "f1": {e: v["f1"] for e, v in m["per_class"].items()},
        "confusion_matrix": m["confusion_matrix"],
    }


def _rows(blocks: list, idx: np.ndarray):
    """These rows of every block, side by side: an ndarray, or CSR when a block is sparse."""
    parts = [b[idx] if sp.issparse(b) else np.asarray(b[idx]) for b in blocks]
    if any(sp.issparse(p) for p in parts):
        return sp.hstack(parts, format="csr")
    return np.concatenate(parts, axis=1)


def run_feature_cell(
    cell: Cell,
    blocks: list[np.ndarray],
    labels: np.ndarray,
    index: dict[str, np.ndarray],
    settings: dict,
    threads: int = 1,
) -> dict:
    """Fit and score one feature cell (runs in a worker).

    Parameters
    ----------
    cell : Cell
    blocks : list of ndarray of shape (n_images, d_i), dtype float32
        The cached matrices of the cell's extractors, rows in data-set order (CSR matrices
        for an extractor with ``sparse_output``).
    labels : ndarray of shape (n_images,), dtype str
        Emotion names.
    index : dict of {usage: ndarray of int}
        Rows of Training, PublicTest and PrivateTest.
    settings : dict
        ``pca``, ``seed``, ``cv``, ``class_weight``, ``clf_params``.
    threads : int, default=1
        BLAS/OpenMP threads inside the cell (threadpoolctl).

    Returns
    -------
    dict
        ``dims``, ``fit_seconds``, ``predict_img_per_s`` (the head on features, PrivateTest),
        ``peak_memory_mib`` (RSS of the worker during the cell), ``PublicTest``/``PrivateTest``
        scores (accuracy, macro-F1, per-class F1, confusion matrix) and ``cv`` when asked.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_validate
    from threadpoolctl import threadpool_limits

    from fer_features.training.pipelines import build_head, cap_pca

    record: dict = {"worker_pid": os.getpid(), "threads": threads}
    with threadpool_limits(limits=threads), PeakMemory() as peak:
        rows = {u: _rows(blocks, idx) if len(idx) else None for u, idx in index.items()}
        X_train, y_train = rows["Training"], labels[index["Training"]]
        dims = int(X_train.shape[1])
        head = build_head(
            cell.clf,
            n_features=dims,
            block_sizes=[int(b.shape[1]) for b in blocks],
            block_names=cell.blocks,
            pca=settings["pca"],
            class_weight=settings["class_weight"],
            n_jobs=1,
            random_state=settings["seed"],
            clf_params=settings["clf_params"],
        )
        cap_pca(head, X_train.shape[0] * (settings["cv"] - 1) // settings["cv"] if settings["cv"] else X_train.shape[0])
        if settings["cv"]:
            folds = StratifiedKFold(n_splits=settings["cv"], shuffle=True, random_state=settings["seed"])
            cvs = cross_validate(clone(head), X_train, y_train, cv=folds, scoring={"accuracy": "accuracy", "macro_f1": "f1_macro"})
            record["cv"] = {
                "folds": settings["cv"],
                "accuracy_mean": float(np.mean(cvs["test_accuracy"])),
                "accuracy_std": float(np.std(cvs["test_accuracy"])),
                "macro_f1_mean": float(np.mean(cvs["test_macro_f1"])),
                "macro_f1_std": float(np.std(cvs["test_macro_f1"])),
                "seconds": round(float(np.sum(cvs["fit_time"]) + np.sum(cvs["score_time"])), 2),
            }
        start = time.perf_counter()
        head.fit(X_train, y_train)
        record["fit_seconds"] = round(time.perf_counter() - start, 2)
        for usage in ("PublicTest", "PrivateTest"):
            if rows[usage] is not None:
                record[usage] = _scores(head, rows[usage], labels[index[usage]])
    record["dims"] = dims
    record["peak_memory_mib"] = peak.peak_mib
    if "PrivateTest" in record and record["PrivateTest"]["predict_seconds"] > 0:
        record["predict_img_per_s"] = round(record["PrivateTest"]["n"] / record["PrivateTest"]["predict_seconds"], 1)
    return record


def run_baseline_cell(checkpoint: str, X: np.ndarray, labels: np.ndarray, index: dict[str, np.ndarray], device: str = "auto", threads: int = 1) -> dict:
    """Score the end-to-end CNN of a checkpoint (runs in a worker).

    Its training time and epochs come from the checkpoint (written by ``fer train --clf cnn``);
    PrivateTest is scored plainly and, apart, with flip and ten-crop test-time augmentation.
    """
    import torch
    from threadpoolctl import threadpool_limits

    from fer_features.cnn.checkpoints import load_checkpoint
    from fer_features.cnn.classifier import CNNClassifier

    ckpt = load_checkpoint(checkpoint)
    torch.set_num_threads(threads)
    record: dict = {"worker_pid": os.getpid(), "threads": threads}
    with threadpool_limits(limits=threads), PeakMemory() as peak:
        net = CNNClassifier.from_checkpoint(checkpoint, device=device)
        for usage in ("PublicTest", "PrivateTest"):
            if len(index[usage]):
                record[usage] = _scores(net, X[index[usage]], labels[index[usage]])
        if len(index["PrivateTest"]):
            for name, mode in TTA_REPORTS:
                net.set_params(tta=mode)
                record[name] = _scores(net, X[index["PrivateTest"]], labels[index["PrivateTest"]])
    record["dims"] = int(net.module_.classifier.in_features)
    record["peak_memory_mib"] = peak.peak_mib
    record["fit_seconds"] = round(float(ckpt.get("train_seconds", float("nan"))), 2)
    record["fit_from_checkpoint"] = True
    record["epochs"] = len(ckpt.get("history", []))
    record["best_epoch"] = ckpt.get("best_epoch")
    record["train_device"] = ckpt.get("device")
    if "PrivateTest" in record and record["PrivateTest"]["predict_seconds"] > 0:
        record["predict_img_per_s"] = round(record["PrivateTest"]["n"] / record["PrivateTest"]["predict_seconds"], 1)
    return record


def _numbered(i: int, name: str, fn: Callable, *args) -> tuple[int, dict]:
    try:
        return i, fn(*args)
    except ValueError as exc:  # e.g. too few images of a class for the head: say which cell
        raise ValueError(f"cell {name}: {exc}") from exc


def extract_features(
    dataset: FERDataset,
    names: list[str],
    cache: BenchmarkCache,
    *,
    feature_params: dict[str, dict] | None = None,
    n_jobs: int | None = -1,
    force: bool = False,
    on_event: Callable[[str, dict], None] | None = None,
) -> dict[str, tuple[np.ndarray, dict]]:
    """Each named extractor's matrix over the whole data set, from the cache or computed once.

    Parameters
    ----------
    dataset : FERDataset
    names : list of str
        Single feature names (``hog``, ``cnn`` …).
    cache : BenchmarkCache
    feature_params : dict of {name: dict}, optional
        Extractor parameters (for ``cnn``: ``checkpoint``).
    n_jobs : int, default=-1
        Processes per extractor (all cores by default).
    force : bool, default=False
        Recompute even when cached.
    on_event : callable, optional
        Called as ``on_event(kind, info)`` with kind ``'extract-start'``, ``'extract-progress'``
        (``done``, ``total``) or ``'extract-done'``.

    Returns
    -------
    dict of {name: (ndarray of shape (n_images, d), dtype float32, dict)}
        The matrix (memory-mapped from the cache) and its metadata: ``dims``, ``seconds``
        (wall time of the extraction when it was computed), ``img_per_s``, ``cached``, and
        ``fit_on``/``fit_seconds``: an extractor that learns from the images (``sift-bovw``) is
        fitted on the Training rows only, in ``fit_seconds``, before it transforms every row.
    """
    from sklearn.base import clone

    from fer_features.features import make_features
    from fer_features.features.base import extraction_progress, learns_from_data

    notify = on_event or (lambda kind, info: None)
    train = np.flatnonzero(dataset.usage == "Training")
    out = {}
    for name in names:
        params = (feature_params or {}).get(name, {})
        transformer = make_features(name, n_jobs=n_jobs, params={name: params} if params else None).transformer_list[0][1]
        learned = learns_from_data(transformer)
        # A fitted extractor (sift-bovw's vocabulary) is fitted on the Training rows only, and
        # which rows those are is part of its key: the cached matrix is then what the pipeline
        # of `fer train` would compute, vocabulary from Training, applied to every split.
        fit_rows = train if learned else None
        key = extractor_key(name, transformer, dataset.fingerprint, fit_rows=fit_rows)
        hit = None if force else cache.load_features(name, key)
        if hit is not None:
            X, info = hit
            out[name] = (X, {**info, "cached": True})
            notify("extract-done", out[name][1])
            continue
        notify("extract-start", {"name": name, "total": len(dataset)})

        def hook(feature: str, done: int, total: int, _name=name) -> None:
            notify("extract-progress", {"name": _name, "done": done, "total": total})

        start = time.perf_counter()
        fitted = clone(transformer).fit(dataset.X[train] if learned else dataset.X[:1])
        fit_seconds = time.perf_counter() - start
        with extraction_progress(hook):
            X = fitted.transform(dataset.X)
        seconds = time.perf_counter() - start - fit_seconds
        cache.save_features(
            name,
            key,
            X,
            {"seconds": round(seconds, 2), "img_per_s": round(len(dataset) / seconds, 1), "n_jobs": n_jobs,
             "fit_on": "Training" if learned else None, "fit_seconds": round(fit_seconds, 2),
             "params": {k: str(v) for k, v in transformer.get_params().items()}, "machine": machine_info()},
        )
        X, info = cache.load_features(name, key)  # memory-mapped: worker processes share the file
        out[name] = (X, {**info, "cached": False})
        notify("extract-done", out[name][1])
    return out


def cell_key(cell: Cell, dataset: FERDataset, feature_keys: list[str], settings: dict, checkpoint_digest: str | None) -> str:
    """Cache key of a cell's record: data, extractors, head, settings (and the CNN for the baseline)."""
    return joblib.hash(
        [CACHE_VERSION, asdict(cell), dataset.fingerprint, feature_keys, settings, checkpoint_digest]
    )


@contextlib.contextmanager
def _backend(backend: str, scheduler: str | None, n_jobs: int) -> Iterator[int]:
    """Joblib's parallel configuration for the cells; yields the n_jobs to use."""
    if backend == "local":
        yield n_jobs
        return
    if backend != "dask":
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - in the lock file
        raise ValueError("the dask backend needs dask.distributed: pip install 'dask[distributed]'") from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            except OSError as exc:
                raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:  # no address: a cluster of local processes, one thread each
            cluster = stack.enter_context(LocalCluster(n_workers=max(1, n_jobs), threads_per_worker=1, dashboard_address=None))
            client = stack.enter_context(Client(cluster))
        stack.enter_context(joblib.parallel_config(backend="dask"))
        yield max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})) or n_jobs)


def run_benchmark(
    dataset: FERDataset,
    grid: Grid,
    *,
    cache_dir: str | Path,
    cnn_checkpoint: str | Path | None = None,
    n_jobs: int = 1,
    extract_n_jobs: int | None = -1,
    backend: str = "local",
    scheduler: str | None = None,
    device: str = "auto",
    force: bool = False,
    on_event: Callable[[str, dict], None] | None = None,
) -> list[dict]:
    """Run every cell of a grid on one data set, reusing cached features and finished cells.

    Parameters
    ----------
    dataset : FERDataset
        With Training (fit), PublicTest and PrivateTest rows.
    grid : Grid
        Validated grid (:meth:`Grid.validate`).
    cache_dir : str or Path
        :class:`BenchmarkCache` folder. A re-run after a crash skips the cells already there.
    cnn_checkpoint : str or Path, optional
        Trained CNN for the ``cnn`` feature and the baseline; required when the grid uses them.
    n_jobs : int, default=1
        Cells run at once (processes); each gets ``cpu_count // n_jobs`` BLAS threads.
    extract_n_jobs : int, default=-1
        Processes for each feature extraction.
    backend : {'local', 'dask'}, default='local'
        ``'dask'`` sends the cells to a dask.distributed cluster through joblib's Dask backend.
    scheduler : str, optional
        Address of the Dask scheduler (``tcp://host:8786``); without it, a LocalCluster of
        ``n_jobs`` single-threaded worker processes is started.
    device : {'auto', 'cpu', 'cuda', 'mps'}, default='auto'
        Torch device for the CNN.
    force : bool, default=False
        Recompute features and cells even when cached.
    on_event : callable, optional
        Progress callback ``on_event(kind, info)``: the extraction events of
        :func:`extract_features`, then ``'cell-done'`` with each record.

    Returns
    -------
    list of dict
        One record per cell, in grid order: ``features``, ``clf``, ``dims``, ``extract_seconds``,
        ``extract_img_per_s``, ``fit_seconds``, ``predict_img_per_s``, ``peak_memory_mib``,
        ``PublicTest`` and ``PrivateTest`` scores, ``cv`` when asked, ``cached``, ``finished``, and
        ``run_seconds_so_far`` (wall time from the start of the run that computed the cell, data
        already loaded, to the cell's end: its maximum over a run is that run's length).

    Raises
    ------
    ValueError
        If the data has no Training rows, the grid needs a CNN checkpoint that is missing, or
        the backend is unknown or unreachable.
    """
    notify = on_event or (lambda kind, info: None)
    run_started = time.time()
    index = _split_index(dataset)
    if not len(index["Training"]):
        raise ValueError(f"{dataset.source}: has no Training images")
    cells = grid.cells()
    needs_cnn = any(c.is_baseline or "cnn" in c.blocks for c in cells)
    digest = None
    if needs_cnn:
        if cnn_checkpoint is None or not Path(cnn_checkpoint).is_file():
            raise ValueError(
                f"{cnn_checkpoint}: no CNN checkpoint, which the cnn feature and the baseline need; "
                "train one with `fer train --clf cnn` or leave them out (--no-baseline, --features without cnn)"
            )
        digest = file_digest(cnn_checkpoint)
    cache = BenchmarkCache(cache_dir)
    feature_params = {k: dict(v) for k, v in grid.feature_params.items()}
    if any("cnn" in c.blocks for c in cells):
        feature_params.setdefault("cnn", {}).update(checkpoint=str(cnn_checkpoint), device=device)
    names = list(dict.fromkeys(b for c in cells for b in c.blocks))
    features = extract_features(dataset, names, cache, feature_params=feature_params, n_jobs=extract_n_jobs, force=force, on_event=notify)
    labels = dataset.labels
    n_images = len(dataset)

    records: dict[Cell, dict] = {}
    todo = []
    for cell in cells:
        settings = {
            "pca": grid.pca,
            "seed": grid.seed,
            "cv": 0 if cell.is_baseline else grid.cv,
            "class_weight": grid.class_weight,
            "clf_params": grid.classifier_params.get(cell.clf, {}),
        }
        keys = [features[b][1]["key"] for b in cell.blocks]
        key = cell_key(cell, dataset, keys, settings, digest if (cell.is_baseline or "cnn" in cell.blocks) else None)
        extract_seconds = sum(features[b][1]["seconds"] for b in cell.blocks)
        feature_fit_seconds = sum(features[b][1].get("fit_seconds") or 0.0 for b in cell.blocks if features[b][1].get("fit_on"))
        base = {
            "features": cell.features,
            "clf": cell.clf,
            "cell": cell.name,
            "n_train": int(len(index["Training"])),
            "data_fingerprint": dataset.fingerprint,
            "settings": settings,
            "extract_seconds": round(extract_seconds, 2) if cell.blocks else None,
            "extract_img_per_s": round(n_images / extract_seconds, 1) if cell.blocks and extract_seconds > 0 else None,
            # learning the extractors (a vocabulary) on Training: part of the pipeline's fit
            "feature_fit_seconds": round(feature_fit_seconds, 2) if feature_fit_seconds else None,
        }
        cached = None if force else cache.load_cell(cell.slug, key)
        if cached is not None:
            records[cell] = {**cached, "cached": True}
            notify("cell-done", records[cell])
        else:
            todo.append((cell, key, base))

    # Longest first (SVMs, wide unions) so parallel workers finish together.
    cost = {"svm": 3, "linear-svm": 2, "logreg": 1, "gbm": 1}
    todo.sort(key=lambda t: (t[0].is_baseline, -cost.get(t[0].clf, 1), -sum(features[b][1]["dims"] for b in t[0].blocks)))
    cpu = os.cpu_count() or 1
    with _backend(backend, scheduler, n_jobs) as workers:
        threads = max(1, cpu // max(1, workers)) if backend == "local" else 1

        def tasks():
            for i, (cell, _key, base) in enumerate(todo):
                if cell.is_baseline:
                    args = (run_baseline_cell, str(cnn_checkpoint), dataset.X, labels, index, device, threads)
                else:
                    blocks = [features[b][0] for b in cell.blocks]
                    args = (run_feature_cell, cell, blocks, labels, index, base["settings"], threads)
                yield joblib.delayed(_numbered)(i, cell.name, *args)

        if todo:
            # Unordered: each record is stored the moment its cell ends, so a crash loses only
            # the cells still running.
            parallel = joblib.Parallel(n_jobs=workers, return_as="generator_unordered", pre_dispatch="n_jobs")
            for i, result in parallel(tasks()):
                cell, key, base = todo[i]
                record = {**base, **result, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info(),
                          "backend": backend, "workers": workers, "run_started_epoch": round(run_started, 1),
                          "run_seconds_so_far": round(time.time() - run_started, 1)}
                if record.get("extract_seconds") and record.get("predict_img_per_s") and "PrivateTest" in record:
                    n = record["PrivateTest"]["n"]
                    per_image = record["extract_seconds"] / n_images + record["PrivateTest"]["predict_seconds"] / n
                    record["e2e_img_per_s"] = round(1 / per_image, 1)
                cache.save_cell(cell.slug, key, record)
                records[cell] = {**record, "key": key, "cached": False}
                notify("cell-done", records[cell])
    return [records[c] for c in cells]
