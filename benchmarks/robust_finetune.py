"""Issue 32's ablation: fine-tune the default model's compact CNN with one change to its recipe per
arm, then score each on the robustness benchmark.

    python benchmarks/robust_finetune.py --epochs 4 --out /tmp/abl

Every arm starts from ``models/cnn-compact-stem2-ens.pt`` (``--start``: another checkpoint) and trains the same epochs at the same
learning rate on FER2013 Training (best epoch on PublicTest's FER2013 labels); each checkpoint is
then measured with ``fer robustness --split PublicTest`` (selection data only). The arms
(``--arms``, comma-separated; default all):

- ``recipe``: the checkpoint's own recipe (rotation ±10°, scale ±10%, erasing 0.25);
- ``shift-matched``: rotation ±25° (the benchmark's largest), scale ±25% (framing), erasing 0.5
  (occlusion);
- ``photometric``: the recipe plus one of the benchmark's photometric shifts on a share
  ``--photometric`` of the faces (``TrainConfig.photometric``; :mod:`fer_features.cnn.photometric`);
- ``ferplus-soft``: the recipe, its targets ``(1 - w) * FER2013 one-hot + w * FERPlus vote
  distribution`` of the same faces, ``w = --ferplus-weight`` (:func:`ferplus_soft_targets`);
- ``photometric+ferplus``: both;
- ``mixup+cutmix``: the recipe, each batch mixed by mixup (alpha 0.2; Zhang et al. 2018) or
  CutMix (alpha 1.0, Yun et al. 2019; a pasted rectangle, an occlusion) at random;
- ``photometric+mixup+cutmix``: both;
- ``distill``: the recipe, its targets half the label and half the mean distribution of the
  ``--teacher`` networks on the (clean, mirror-averaged) Training faces (Hinton et al. 2015;
  ``TrainConfig.teacher``): the committed members of ``make accurate``, whose knowledge the
  start checkpoint was distilled from and plain fine-tuning loses;
- ``photometric+distill``: both;
- ``pipeline-views``: the recipe, each face replaced with probability ``--pipeline-views`` by
  its view through the photo pipeline (made a photo, found by the detector and re-aligned:
  :func:`fer_features.data.photos.pipeline_views`; ``TrainConfig.pipeline_views``), the framing
  every photo's face has; the views of the Training faces are made once and kept in
  ``--out``/``pipeline-views.npz``;
- ``photometric+pipeline-views``, ``pipeline-views+distill``: both;
- ``photometric+mixup+cutmix+pipeline-views``: all three;
- ``photometric+ferplus+pipeline-views``: photometric shifts, pipeline views and the FERPlus
  votes in the targets;
- ``photometric+pipeline-views+distill``, ``photometric+ferplus+pipeline-views+distill``: those
  with the ``--teacher``'s distribution in the targets too.

Prints one JSON line per arm (its targets, training seconds, best epoch, PublicTest accuracy and
the report's clean, shifted-mean and per-shift scores). Resumable: an arm whose checkpoint (``ARM.pt``) and report
(``ARM.json``) are in ``--out`` is not run again, its line is printed from them; a checkpoint
without its report is only scored; an interrupted training resumes from ``ARM.resume.pt``.
``--limit`` trains and scores on that many faces per split, for a smoke test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START = ROOT / "models" / "cnn-compact-stem2-ens.pt"
DATA = ROOT.parent / "shared" / "data"
SHIFT_MATCHED = {"max_rotation": 25.0, "max_scale": 0.25, "erasing": 0.5}
#: The networks of ``make accurate`` (Makefile ACCURATE_CNNS), the teacher of the distill arms.
TEACHER = ",".join(str(ROOT / "models" / m) for m in ("cnn-large.pt", "cnn-compact-ens.pt", "cnn-compact-stem2-ens.pt"))


def arms(photometric: float, ferplus_weight: float, teacher: str = TEACHER, views: float = 0.5) -> dict[str, tuple[dict, float]]:
    """Each arm's changes to the TrainConfig and the weight of the FERPlus votes in its targets."""
    distill = {"teacher": teacher, "distill": 0.5}
    mixing = {"mixup": 0.2, "cutmix": 1.0}
    return {
        "recipe": ({}, 0.0),
        "shift-matched": (SHIFT_MATCHED, 0.0),
        "photometric": ({"photometric": photometric}, 0.0),
        "ferplus-soft": ({}, ferplus_weight),
        "photometric+ferplus": ({"photometric": photometric}, ferplus_weight),
        "mixup+cutmix": (mixing, 0.0),
        "photometric+mixup+cutmix": ({"photometric": photometric, **mixing}, 0.0),
        "distill": (distill, 0.0),
        "photometric+distill": ({"photometric": photometric, **distill}, 0.0),
        "pipeline-views": ({"pipeline_views": views}, 0.0),
        "photometric+pipeline-views": ({"photometric": photometric, "pipeline_views": views}, 0.0),
        "pipeline-views+distill": ({"pipeline_views": views, **distill}, 0.0),
        "photometric+mixup+cutmix+pipeline-views": ({"photometric": photometric, **mixing, "pipeline_views": views}, 0.0),
        "photometric+ferplus+pipeline-views": ({"photometric": photometric, "pipeline_views": views}, ferplus_weight),
        "photometric+pipeline-views+distill": ({"photometric": photometric, "pipeline_views": views, **distill}, 0.0),
        "photometric+ferplus+pipeline-views+distill": (
            {"photometric": photometric, "pipeline_views": views, **distill},
            ferplus_weight,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA / "fer2013.csv.gz"))
    parser.add_argument("--votes", default=str(DATA / "fer2013new.csv"), help="FERPlus fer2013new.csv")
    parser.add_argument("--arms", default=",".join(arms(0, 0)), help="comma-separated; default all")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--photometric", type=float, default=0.5, help="share of faces with a photometric shift")
    parser.add_argument("--ferplus-weight", type=float, default=0.5, help="weight of the FERPlus votes in the targets")
    parser.add_argument("--pipeline-views", type=float, default=0.5, help="share of faces seen through the photo pipeline")
    parser.add_argument("--teacher", default=TEACHER, help="comma-separated checkpoints of the distill arms' teacher")
    parser.add_argument("--start", default=str(START), help="the checkpoint every arm starts from")
    parser.add_argument("--seed", type=int, default=0, help="the training seed (batch order, augmentation)")
    parser.add_argument("--limit", type=int, default=0, help="faces per split (smoke test); 0: all")
    parser.add_argument("--out", default="/tmp/robust-finetune")
    args = parser.parse_args()
    table = arms(args.photometric, args.ferplus_weight, args.teacher, args.pipeline_views)
    chosen = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in chosen if a not in table]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; expected some of {', '.join(table)}")

    import pandas as pd

    from fer_features.benchmark.robustness import card_entry
    from fer_features.cnn.checkpoints import load_checkpoint, save_checkpoint
    from fer_features.cnn.loop import train_cnn
    from fer_features.cnn.recipe import TrainConfig
    from fer_features.data.ferplus import ferplus_soft_targets
    from fer_features.data.photos import pipeline_views
    from fer_features.data.sources import load_data

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start_path = Path(args.start)
    start = load_checkpoint(start_path)
    data = load_data(args.data, limit=args.limit or None)
    train, val = data.usage == "Training", data.usage == "PublicTest"
    X, y, X_val, y_val = data.X[train], data.y[train], data.X[val], data.y[val]  # labels as class indices
    for arm in chosen:
        changes, weight = table[arm]
        spec = {"arm": arm, "changes": changes, "ferplus_weight": weight, "epochs": args.epochs, "lr": args.lr,
                "limit": args.limit, "start": start_path.name, **({"seed": args.seed} if args.seed else {})}  # fmt: skip
        path, report = out / f"{arm}.pt", out / f"{arm}.json"
        if path.is_file():
            ckpt = load_checkpoint(path)
            done = ckpt.get("ablation", {}).get("spec")
            if done is not None and done != spec:
                sys.exit(f"{path} was trained as {done}, not {spec}: pass another --out or remove it")
        else:
            soft, targets = None, {"labels": "FER2013"}
            if weight > 0:
                mixed, has_votes = ferplus_soft_targets(data.subset(train), args.votes, weight=weight)
                soft = mixed
                targets = {"labels": "FER2013 + FERPlus votes", "votes": args.votes, "weight": weight,
                           "faces_with_votes": int(has_votes.sum()), "faces": int(len(has_votes))}  # fmt: skip
            views = None
            if changes.get("pipeline_views"):
                cache = out / "pipeline-views.npz"
                if not cache.is_file():
                    t = time.perf_counter()
                    made, found = pipeline_views(X)
                    np.savez(cache, views=made, found=found, seconds=time.perf_counter() - t)
                views = np.load(cache)["views"]
                if views.shape != X.shape:
                    sys.exit(f"{cache} holds views of {len(views)} faces, not of these {len(X)}: remove it")
            config = TrainConfig(net=dict(start["config"]["net"]), preset=start["config"].get("preset", "compact"), epochs=args.epochs,
                                 lr=args.lr, init_checkpoint=str(start_path), patience=args.epochs, seed=args.seed, **changes)  # fmt: skip
            t = time.perf_counter()
            ckpt = train_cnn(X, y, X_val, y_val, config=config, classes=list(data.classes), soft_train=soft,
                             resume_path=out / f"{arm}.resume.pt", views_train=views)  # fmt: skip
            ckpt["classes"] = [str(c) for c in data.classes]  # what a model file needs to name its outputs
            ckpt["ablation"] = {"spec": spec, "targets": targets, "wall_seconds": round(time.perf_counter() - t)}
            save_checkpoint(ckpt, path)
        if not report.is_file():
            cmd = [sys.executable, "-m", "fer_features.cli", "robustness", "--model", str(path), "--data", args.data,
                   "--split", "PublicTest", "--out", str(report)]  # fmt: skip
            if args.limit:
                cmd += ["--limit", str(args.limit), "--framing-n", str(min(args.limit, 1000))]
            subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        summary = card_entry(pd.DataFrame(json.loads(report.read_text())))  # clean, shifted mean, each shift
        record = ckpt.get("ablation", {})
        print(json.dumps({"arm": arm, "changes": changes, "targets": record.get("targets"),
                          "train_seconds": ckpt.get("train_seconds"), "best_epoch": ckpt.get("best_epoch"),
                          "val_accuracy": ckpt.get("val_accuracy"), "robustness": summary, "report": str(report)},
                         default=float), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
