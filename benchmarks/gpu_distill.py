"""Teachers, then students distilled from their ensemble, on one GPU in one time-boxed run.

The device script behind the CNNs of ``benchmarks/gpu_distill.md``. It trains with the library's
own :func:`fer_features.cnn.train.train_cnn` (the recipe of record: SGD Nesterov one-cycle,
label smoothing, flip/rotate/zoom/shift, random erasing, a weight EMA that is validated and kept,
the best PublicTest epoch selected), so each result is an ordinary checkpoint that
``fer evaluate``, ``fer quantize`` and ``--cnn-checkpoint`` take. PrivateTest is not read here:
the data file holds Training and PublicTest only.

Two phases, each a set of runs started together on the one GPU (small networks leave it mostly
idle, so runs side by side cost little each):

1. teachers, trained on the labels;
2. students, distilled (``teacher=a.pt,b.pt,...``) from the ensemble of the phase-1 networks and
   of any ``--extra-teacher`` checkpoints.

Each run's epochs are set from its time budget: before training, the run times 30 of its own
training steps and one validation pass (with the other runs of its phase doing the same), and
takes the number of epochs that fits. The schedule is the one-cycle schedule over those epochs.

Usage (on the device machine; the folder ``.gpu`` made by ``benchmarks/gpu_data.py`` and carried)::

    PYTHONPATH=. python3 benchmarks/gpu_distill.py --data .gpu --out $OUT \\
        --teacher-seconds 200 --student-seconds 230 --extra-teacher models/cnn-medium-c4.pt
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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
    from fer_features.cnn.net import PRESETS
    from fer_features.cnn.train import TrainConfig

    spec = dict(spec)
    net = dict(PRESETS[spec["preset"]])
    if "stem_stride" in spec:
        net["stem_stride"] = spec.pop("stem_stride")
    return TrainConfig(**{**RECIPE, **spec}, epochs=epochs, patience=epochs, teacher=teacher, net=net)


def _calibrate(cfg, X_train: np.ndarray, X_val: np.ndarray, device, n_steps: int = 30) -> tuple[float, float]:
    """Seconds per training step and per validation pass of ``cfg``'s network on ``device``."""
    import torch

    from fer_features.cnn.net import build_net
    from fer_features.cnn.train import augment, autocast, predict_logits, soft_cross_entropy, to_channels_last, to_tensor

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

    from fer_features.cnn.train import resolve_device, save_checkpoint, train_cnn

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder written by benchmarks/gpu_data.py")
    parser.add_argument("--out", required=True, help="folder for the checkpoints")
    parser.add_argument("--teacher-seconds", type=float, default=200.0)
    parser.add_argument("--student-seconds", type=float, default=230.0)
    parser.add_argument("--extra-teacher", action="append", default=[], help="a checkpoint added to the ensemble teacher")
    parser.add_argument("--only", choices=["teachers", "students"], help="run one phase (students: --extra-teacher only)")
    parser.add_argument("--subset", type=int, default=0, help="the first N faces of each split only (a smoke test)")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    from gpu_data import read_trainval  # beside this script

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


if __name__ == "__main__":
    main()
