"""The CNNs trained on a GPU: teachers, then students distilled from their ensemble, and their scores.

This one script reproduces the search of BENCHMARKS.md, section "CNNs trained on a GPU", which
made three of the committed checkpoints (``models/cnn-large.pt``, ``models/cnn-compact-ens.pt``,
``models/cnn-compact-stem2-ens.pt``) and chose the ensemble of ``make accurate``. It has four
steps, one subcommand each, run in this order:

``data`` (here)
    Training and PublicTest of FER2013 as lossless WebP mosaics in a folder that travels to the
    GPU machine. That machine gets the repository and what a call carries (64 MiB in all), not
    ``../shared``; WebP's lossless mode packs the faces to ~70% of their bytes (zlib: ~95%), and
    the pixels decode bit for bit. PrivateTest stays behind, so nothing on the device can select
    on it. Labels are indices into the class names sorted alphabetically, the order of the CNN's
    outputs in :class:`fer_features.cnn.classifier.CNNClassifier`.
``train`` (on the GPU machine)
    Two phases, each a set of runs started together on the one GPU (small networks leave it
    mostly idle, so runs side by side cost little each): teachers trained on the labels, then
    students distilled (``teacher=a.pt,b.pt,...``) from the ensemble of the teachers and of any
    ``--extra-teacher`` checkpoints. Every run uses the library's own
    :func:`fer_features.cnn.loop.train_cnn` (the recipe of record: SGD Nesterov one-cycle, label
    smoothing, flip/rotate/zoom/shift, random erasing, a weight EMA that is validated and kept,
    the best PublicTest epoch selected), so each result is an ordinary checkpoint that
    ``fer evaluate``, ``fer quantize`` and ``--cnn-checkpoint`` take. Each run's epochs are set
    from its time budget: it first times 30 of its own training steps and one validation pass
    (with the other runs of its phase doing the same) and takes the number of epochs that fits.
``eval`` (here)
    Each checkpoint, and each ensemble given as ``a.pt+b.pt`` (mean of the members' class
    probabilities), scored on PublicTest and PrivateTest, plainly and with flip TTA, in
    ``--precision`` (bf16 by default; int8 needs ``fer quantize`` first).
``ensembles`` (here)
    Every subset of a set of int8 checkpoints as an ensemble, sorted by PublicTest (the selection
    split; with this many subsets the best PublicTest is an optimistic pick, which is why
    PrivateTest, never used to choose, is printed beside it). ``--speed NAME=CROPS_PER_S`` (each
    network's int8 crops/s from ``benchmarks/int8.py``) adds an estimate of the ensemble's
    crops/s: one over the sum of its members' seconds a crop (twice that with flip).

Usage (the commands of record; the GPU step on a machine lent for 15 minutes)::

    python benchmarks/gpu_distill.py data ../shared/data/fer2013.csv.gz .gpu
    # on the GPU machine, with the folder .gpu carried:
    PYTHONPATH=. python3 benchmarks/gpu_distill.py train --data .gpu --out $OUT \\
        --teacher-seconds 235 --student-seconds 235 --extra-teacher models/cnn-medium-c4.pt
    # back here, each checkpoint calibrated for int8 with `fer quantize CHECKPOINT --data ...`:
    python benchmarks/gpu_distill.py eval runs/*.pt 't-large-0.pt+t-large-1.pt' --root runs --precision bf16
    python benchmarks/gpu_distill.py ensembles L1=models/cnn-large.pt SC=models/cnn-compact-ens.pt ... \\
        --speed L1=4047 --speed SC=20604 --out runs/ensembles-int8.jsonl
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz")

# --- data: FER2013 Training and PublicTest as lossless WebP mosaics ----------------------------

#: Faces per mosaic: 50 rows of 40.
GRID = (50, 40)


def write_mosaics(X: np.ndarray, folder: Path, name: str) -> None:
    """``(n, 48, 48)`` uint8 → ``folder/name-000.webp`` … (lossless mosaics of ``GRID`` faces, the last padded)."""
    from PIL import Image

    per = GRID[0] * GRID[1]
    h, w = X.shape[1:]
    for k in range(0, len(X), per):
        chunk = np.zeros((per, h, w), np.uint8)
        chunk[: len(X[k : k + per])] = X[k : k + per]
        mosaic = chunk.reshape(*GRID, h, w).transpose(0, 2, 1, 3).reshape(GRID[0] * h, GRID[1] * w)
        Image.fromarray(mosaic).save(folder / f"{name}-{k // per:03d}.webp", lossless=True, quality=50, method=4)


def read_mosaics(folder: Path, name: str, n: int, size: int = 48) -> np.ndarray:
    """The ``n`` faces written by :func:`write_mosaics`, ``(n, size, size)`` uint8."""
    from PIL import Image

    parts = []
    for path in sorted(Path(folder).glob(f"{name}-*.webp")):
        mosaic = np.asarray(Image.open(path).convert("L"))
        parts.append(mosaic.reshape(GRID[0], size, GRID[1], size).transpose(0, 2, 1, 3).reshape(-1, size, size))
    return np.concatenate(parts)[:n]


def read_trainval(folder: str | Path) -> dict[str, np.ndarray]:
    """``X_train, y_train, X_val, y_val, classes`` from a folder written by :func:`write_trainval`."""
    folder = Path(folder)
    meta = dict(np.load(folder / "labels.npz"))
    meta["X_train"] = read_mosaics(folder, "train", len(meta["y_train"]))
    meta["X_val"] = read_mosaics(folder, "val", len(meta["y_val"]))
    return meta


def write_trainval(source: str, out: str) -> None:
    """Training and PublicTest of ``source`` into the folder ``out``, checked by decoding them again."""
    from fer_features.config import EMOTIONS
    from fer_features.data.fer2013 import load_fer2013

    data = load_fer2013(source)
    classes = np.array(sorted(EMOTIONS))
    index = np.searchsorted(classes, np.asarray(EMOTIONS)[data.y])  # FER2013 order -> alphabetical
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    labels = {"classes": classes}
    for key, usage in (("train", "Training"), ("val", "PublicTest")):
        keep = data.usage == usage
        write_mosaics(data.X[keep], folder, key)
        labels[f"y_{key}"] = index[keep]
    np.savez(folder / "labels.npz", **labels)
    back = read_trainval(folder)
    for key, usage in (("train", "Training"), ("val", "PublicTest")):
        assert np.array_equal(back[f"X_{key}"], data.X[data.usage == usage]), "WebP round trip changed pixels"
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"{folder}: {size:,} bytes; Training {len(back['y_train'])}, PublicTest {len(back['y_val'])}, pixels identical after decoding")


# --- train: teachers, then students, on one GPU ------------------------------------------------

# name -> (TrainConfig fields); seeds differ so that the ensemble's members differ
TEACHERS = {
    "t-large-0": {"preset": "large", "seed": 10},
    "t-large-1": {"preset": "large", "seed": 11},
    "t-medium-2": {"preset": "medium", "seed": 12},
}
STUDENTS = {
    "s-compact": {"preset": "compact", "seed": 20, "distill": 0.7},
    "s-compact-stem2": {"preset": "compact", "seed": 21, "distill": 0.7, "stem_stride": 2},
    "s-medium": {"preset": "medium", "seed": 22, "distill": 0.7},
}
RECIPE = {"ema": 0.998, "batch_size": 128, "lr": 0.05, "distill_temperature": 2.0}


def _config(spec: dict, epochs: int, teacher: str = ""):
    from fer_features.cnn.presets import PRESETS
    from fer_features.cnn.recipe import TrainConfig

    spec = dict(spec)
    net = dict(PRESETS[spec["preset"]])
    if "stem_stride" in spec:
        net["stem_stride"] = spec.pop("stem_stride")
    return TrainConfig(**{**RECIPE, **spec}, epochs=epochs, patience=epochs, teacher=teacher, net=net)


def _calibrate(cfg, X_train: np.ndarray, X_val: np.ndarray, device, n_steps: int = 30) -> tuple[float, float]:
    """Seconds per training step and per validation pass of ``cfg``'s network on ``device``."""
    import torch

    from fer_features.cnn.net import build_net
    from fer_features.cnn.recipe import augment, predict_logits, soft_cross_entropy, to_tensor
    from fer_features.torch_utils import autocast, to_channels_last

    net = to_channels_last(build_net({**cfg.net, "n_classes": 7}).to(device), True)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    gen = torch.Generator(device=device).manual_seed(0)
    x = to_tensor(X_train[: cfg.batch_size], 0.5, 0.25)
    t = torch.full((len(x), 7), 1 / 7)

    def step():
        xb = augment(x.to(device), cfg, gen).contiguous(memory_format=torch.channels_last)
        with autocast(device, "bf16"):
            loss = soft_cross_entropy(net(xb), t.to(device), 0.1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(n_steps):
        step()
    step_s = (time.perf_counter() - start) / n_steps
    start = time.perf_counter()
    predict_logits(net.eval(), to_tensor(X_val, 0.5, 0.25), device, precision="bf16")
    return step_s, time.perf_counter() - start


def _run(name: str, spec: dict, budget_s: float, data_path: str, out_dir: str, teacher: str) -> None:
    """One training run in its own process: calibrate, train, save ``out_dir/name.pt``."""
    import torch

    from fer_features.cnn.checkpoints import save_checkpoint
    from fer_features.cnn.loop import train_cnn
    from fer_features.torch_utils import resolve_device

    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(message)s", stream=sys.stdout, force=True)
    log = logging.getLogger("fer_features.cnn")
    torch.backends.cudnn.benchmark = True
    device = resolve_device("auto")
    data = np.load(data_path)
    X_train, y_train, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    step_s, val_s = _calibrate(_config(spec, 1), X_train, X_val, device)
    steps = len(X_train) // RECIPE["batch_size"]
    epoch_s = steps * step_s * 1.15 + val_s  # 15% for the loader, the EMA and the logging
    epochs = max(2, int(budget_s / epoch_s))
    log.info("calibrated %s", json.dumps({"step_s": round(step_s, 5), "val_s": round(val_s, 3), "epoch_s_est": round(epoch_s, 2), "epochs": epochs, "device": str(device)}))
    cfg = _config(spec, epochs, teacher)
    start = time.perf_counter()
    ckpt = train_cnn(X_train, y_train, X_val, y_val, config=cfg, device=str(device))
    ckpt["classes"] = [str(c) for c in data["classes"]]
    ckpt["wall_seconds"] = round(time.perf_counter() - start, 1)
    save_checkpoint(ckpt, Path(out_dir) / f"{name}.pt")
    log.info("done %s", json.dumps({"epochs": epochs, "best_epoch": ckpt["best_epoch"], "val_accuracy": round(ckpt["val_accuracy"], 4), "wall_s": ckpt["wall_seconds"]}))


def _phase(runs: dict, budget_s: float, args, teacher: str = "") -> list[str]:
    """Start ``runs`` side by side, wait for all; the paths of those that wrote a checkpoint."""
    ctx = mp.get_context("spawn")  # CUDA cannot be forked
    procs = {name: ctx.Process(target=_run, args=(name, spec, budget_s, args.data, args.out, teacher)) for name, spec in runs.items()}
    for p in procs.values():
        p.start()
    for name, p in procs.items():
        p.join()
        print(f"{name}: exit code {p.exitcode}", flush=True)
    return [str(Path(args.out) / f"{n}.pt") for n in runs if (Path(args.out) / f"{n}.pt").is_file()]


def train(args) -> None:
    """Both phases (or the one of ``--only``) into ``args.out``."""
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = read_trainval(args.data)
    if args.subset:
        data = {k: (v if k == "classes" else v[: args.subset]) for k, v in data.items()}
    args.data = str(Path(tempfile.mkdtemp()) / "trainval.npz")  # decoded once, read by every run
    np.savez(args.data, **data)
    print(f"data decoded in {time.perf_counter() - start:.1f} s: Training {len(data['y_train'])}, PublicTest {len(data['y_val'])}", flush=True)
    teachers = _phase(TEACHERS, args.teacher_seconds, args) if args.only != "students" else []
    print(f"teachers done at {time.perf_counter() - start:.0f} s: {teachers}", flush=True)
    ensemble = ",".join(teachers + [p for p in args.extra_teacher if Path(p).is_file()])
    if args.only != "teachers" and ensemble:
        _phase(STUDENTS, args.student_seconds, args, teacher=ensemble)
    print(f"all done at {time.perf_counter() - start:.0f} s", flush=True)


# --- eval and ensembles: PublicTest selects, PrivateTest reports -------------------------------


def split_probabilities(path: str, tta: str, precision: str, splits: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A checkpoint's class names and its ``predict_proba`` on each split of ``splits`` (name → (X, y)), on the CPU."""
    from fer_features.cnn.classifier import CNNClassifier

    clf = CNNClassifier.from_checkpoint(path, precision=precision, device="cpu", tta=tta if tta != "none" else False)
    return clf.classes_, {s: clf.predict_proba(X) for s, (X, _) in splits.items()}


def ensemble_accuracy(parts: list, splits: dict) -> dict[str, float]:
    """Accuracy on each split of the mean of ``parts`` (outputs of :func:`split_probabilities`)."""
    classes = parts[0][0]
    return {s: round(float(np.mean(classes[(sum(p[1][s] for p in parts) / len(parts)).argmax(1)] == y)), 4) for s, (_, y) in splits.items()}


def _test_splits(source: str) -> dict:
    from fer_features.data.fer2013 import load_fer2013

    data = load_fer2013(source)
    return {s: data.split(s) for s in ("PublicTest", "PrivateTest")}


def evaluate(args) -> None:
    """One JSON line per checkpoint or ensemble: accuracy on both test splits, plain and flipped."""
    splits = _test_splits(args.data)
    cache: dict = {}
    for model in args.models:
        members = [m if "+" not in model else str(Path(args.root) / m) for m in model.split("+")]
        row = {"model": model, "precision": args.precision}
        for tta in ("none", "flip"):
            for m in members:
                if (m, tta) not in cache:
                    cache[m, tta] = split_probabilities(m, tta, args.precision, splits)
            accuracy = ensemble_accuracy([cache[m, tta] for m in members], splits)
            row.update({f"{split} {tta}": acc for split, acc in accuracy.items()})
        row["load"] = round(os.getloadavg()[0], 2)
        print(json.dumps(row), flush=True)


def ensembles(args) -> None:
    """Every subset of ``args.models`` in int8, plain and flipped, sorted by PublicTest."""
    models = dict(m.split("=", 1) for m in args.models)
    speed = {k: float(v) for k, v in (s.split("=", 1) for s in args.speed)}
    splits = _test_splits(args.data)
    proba = {(name, tta): split_probabilities(path, tta, "int8", splits) for name, path in models.items() for tta in ("none", "flip")}
    rows = []
    for r in range(1, len(models) + 1):
        for combo in itertools.combinations(models, r):
            for tta in ("none", "flip"):
                row = {"members": "+".join(combo), "tta": tta, **ensemble_accuracy([proba[k, tta] for k in combo], splits)}
                if all(k in speed for k in combo):
                    row["crops_per_s_est"] = round(1 / (sum(1 / speed[k] for k in combo) * (2 if tta == "flip" else 1)))
                rows.append(row)
    rows.sort(key=lambda r: -r["PublicTest"])
    if args.out:
        Path(args.out).write_text("".join(json.dumps(r) + "\n" for r in rows))
    for r in rows[: args.top]:
        print(json.dumps(r))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)

    p = sub.add_parser("data", help="Training and PublicTest as lossless WebP mosaics, to carry to the GPU")
    p.add_argument("source", help="FER2013 (fer2013.csv.gz, the zip or its folder)")
    p.add_argument("out", help="folder to write, e.g. .gpu (git ignores it)")

    p = sub.add_parser("train", help="teachers, then students distilled from their ensemble (on the GPU machine)")
    p.add_argument("--data", required=True, help="folder written by the data step")
    p.add_argument("--out", required=True, help="folder for the checkpoints")
    p.add_argument("--teacher-seconds", type=float, default=200.0)
    p.add_argument("--student-seconds", type=float, default=230.0)
    p.add_argument("--extra-teacher", action="append", default=[], help="a checkpoint added to the ensemble teacher")
    p.add_argument("--only", choices=["teachers", "students"], help="run one phase (students: --extra-teacher only)")
    p.add_argument("--subset", type=int, default=0, help="the first N faces of each split only (a smoke test)")

    p = sub.add_parser("eval", help="checkpoints and a+b ensembles on PublicTest and PrivateTest, plain and flipped")
    p.add_argument("models", nargs="+", help="checkpoints, or ensembles joined by '+'")
    p.add_argument("--root", default=".", help="folder the ensemble members are named in")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--precision", default="bf16")

    p = sub.add_parser("ensembles", help="every subset of int8 checkpoints as an ensemble, sorted by PublicTest")
    p.add_argument("models", nargs="+", help="NAME=checkpoint.pt (int8-calibrated: fer quantize)")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--speed", action="append", default=[], help="NAME=int8 crops/s of that network")
    p.add_argument("--out", help="all rows as JSON lines")
    p.add_argument("--top", type=int, default=20)

    args = parser.parse_args(argv)
    if args.step == "data":
        write_trainval(args.source, args.out)
    elif args.step == "train":
        train(args)
    elif args.step == "eval":
        evaluate(args)
    else:
        ensembles(args)


if __name__ == "__main__":
    main()
