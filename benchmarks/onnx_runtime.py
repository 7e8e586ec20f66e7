"""ONNX Runtime against the project's torch path for CNN inference: PrivateTest accuracy and crops/s.

Does an inference path without torch keep the accuracy and the speed? For each checkpoint the
float network (:func:`~fer_features.cnn.checkpoints.net_from_checkpoint`, eval mode) is exported to
ONNX with a dynamic batch axis and two outputs, ``logits`` and ``embedding`` (the penultimate
layer that :class:`~fer_features.features.cnn.CNNEmbedding` feeds the default pipeline's
head), and quantized to int8 by ``onnxruntime.quantization.quantize_static`` (QDQ format, int8
weights per output channel in 7 bits (``reduce_range``, see :func:`quantize_onnx`), uint8
activations per tensor, min-max ranges) calibrated on the same 1,024 Training
faces as ``fer quantize`` (:func:`~fer_features.cnn.int8.calibration_sample`, seed 0). Four
runtimes then predict the 3,589 PrivateTest crops of ``--data``:

* ``torch fp32``: ``CNNClassifier.from_checkpoint(path, precision="fp32", device="cpu")``;
* ``torch int8``: ``CNNClassifier.from_checkpoint(path, precision="int8")``, the project's own
  int8 path (:mod:`fer_features.cnn.int8`, the checkpoint's calibration);
* ``ORT fp32`` and ``ORT int8``: an ``onnxruntime.InferenceSession`` (CPU, ``intra_op_num_threads``
  = ``--threads``, one inter-op thread, all graph optimisations) on the same crops, standardised
  as :func:`~fer_features.cnn.recipe.to_tensor` does (``(x / 255 - mean) / std``), softmax in
  float64 as ``CNNClassifier.predict_proba``.

Accuracy: each network alone and the mean of the networks' probabilities (the soft vote of
``CNNEnsembleClassifier``; its temperature does not change the labels). Speed: one full
``predict_proba``-equivalent call over the 3,589 crops (standardisation included), at each of
``--batch-sizes``; ``--rounds`` rounds in which every (network, runtime, batch size) runs once in
turn, so a change of load hits all of them alike; the median round counts, after one warm-up call
of each. The ensemble's time is the sum of its members' (they run one after the other).
``--default-head`` also fits the default pipeline's head (StandardScaler → LogisticRegression,
``C=0.1``, as ``models/fer-default.json``) on the first checkpoint's torch-int8 Training
embeddings and scores it on PrivateTest with each runtime's embeddings: the shipped head fed by
another runtime.

Needs torch (to export and for the torch rows), ``onnx``, ``onnxruntime`` and ``onnxscript``
besides the project; the ORT rows use none of torch. Example (2 threads, everything else idle)::

    python benchmarks/onnx_runtime.py models/cnn-compact-stem2-ens.pt models/cnn-compact-ens.pt \\
        models/cnn-large.pt --default-head --out onnx_runtime.md
    python benchmarks/onnx_runtime.py --timed "torch int8,ORT int8"     # int8 speed only, on a quiet machine

``--footprint ORT_PYTHON`` additionally reports the MB of that interpreter's site-packages (a
venv with only ``onnxruntime`` and ``numpy``) against torch's and the current environment's, and
the median of 5 ``python -c "import onnxruntime"`` / ``"import torch"`` start-ups.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_CHECKPOINTS = ("models/cnn-compact-stem2-ens.pt", "models/cnn-compact-ens.pt", "models/cnn-large.pt")
RUNTIMES = ("torch fp32", "torch int8", "ORT fp32", "ORT int8")


# --------------------------------------------------------------------------- export and quantization


def export_onnx(ckpt: dict, path: Path, opset: int = 18) -> list[str]:
    """Export a checkpoint's float network to ``path``: input ``faces`` (n, 1, 48, 48) → ``logits``, ``embedding``.

    Returns the warnings the exporter raised (as text).
    """
    import torch
    from torch import nn

    from fer_features.cnn.checkpoints import net_from_checkpoint

    net = net_from_checkpoint(ckpt, torch.device("cpu"))

    class LogitsAndEmbedding(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            e = self.net.embed(x)
            return self.net.classifier(e), e  # dropout is the identity in eval mode

    model = LogitsAndEmbedding(net).eval()
    dummy = torch.zeros(2, 1, 48, 48)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.onnx.export(
            model, (dummy,), str(path), input_names=["faces"], output_names=["logits", "embedding"],
            dynamic_shapes=({0: torch.export.Dim("batch")},), opset_version=opset, dynamo=True, external_data=False,
        )  # fmt: skip
    return [f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught]


class _FaceReader:
    """``CalibrationDataReader`` over standardised faces, in batches."""

    def __init__(self, x: np.ndarray, batch_size: int = 64):
        self._batches = iter([{"faces": x[i : i + batch_size]} for i in range(0, len(x), batch_size)])

    def get_next(self):
        return next(self._batches, None)

    def rewind(self):  # pragma: no cover - not needed by quantize_static
        pass


def quantize_onnx(fp32_path: Path, out: Path, x_calib: np.ndarray, *, method: str = "minmax", reduce_range: bool = True) -> Path:
    """Static QDQ int8 of an fp32 ONNX model, calibrated on standardised faces ``x_calib``.

    ``reduce_range``: 7-bit weights. ORT's x86 u8s8 kernels without VNNI (AVX2) multiply with
    ``vpmaddubsw``, whose int16 pair sums saturate with full-range weights: on an AVX2-only EPYC
    the compact network fell from 0.7063 to 0.6570 PrivateTest accuracy (82.9% top-1 agreement)
    without it, 0.7052 (98.9%) with it. (torch's x86 qconfig reduces its activations' range for
    the same reason.) s8s8 activations changed nothing.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=False)  # folds the batch norms into the convs

    class Reader(_FaceReader, CalibrationDataReader):
        pass

    quantize_static(
        str(pre), str(out), Reader(x_calib), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                          "percentile": CalibrationMethod.Percentile}[method],
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )  # fmt: skip
    return out


# --------------------------------------------------------------------------- the ORT predictor


class ORTNet:
    """An ONNX model of a network as a predictor of class probabilities (and embeddings), numpy only."""

    def __init__(self, path: Path, mean: float, std: float, threads: int, batch_size: int = 256):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.mean, self.std, self.batch_size = np.float32(mean), np.float32(std), batch_size

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        x = np.asarray(X, dtype=np.float32)[:, None] / np.float32(255.0)
        return (x - self.mean) / self.std

    def _run(self, X: np.ndarray, output: str) -> np.ndarray:
        x = self._standardise(X)
        parts = [self.session.run([output], {"faces": x[i : i + self.batch_size]})[0] for i in range(0, len(x), self.batch_size)]
        return np.concatenate(parts)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        logits = self._run(X, "logits").astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def embed(self, X: np.ndarray) -> np.ndarray:
        return self._run(X, "embedding")


# --------------------------------------------------------------------------- measurement


def _ort_int8_ops(path: Path, threads: int) -> str:
    """The op types of the int8 model after ORT's optimisations (does the CPU run QLinearConv?)."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opt = path.with_suffix(".optimized.onnx")
    so.optimized_model_filepath = str(opt)
    ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    ops: dict[str, int] = {}
    for node in onnx.load(str(opt)).graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(ops.items(), key=lambda kv: -kv[1]))


def footprint(ort_python: str) -> dict:
    """Site-packages MB and median import seconds of onnxruntime (``ort_python``) against torch (this interpreter)."""
    import sysconfig

    def du(paths) -> int:
        out = subprocess.run(["du", "-sm", "-c", *map(str, paths)], capture_output=True, text=True, check=True).stdout
        return int(out.strip().splitlines()[-1].split()[0])

    def site(python: str) -> Path:
        return Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())

    ort_site, here = site(ort_python), Path(sysconfig.get_paths()["purelib"])
    times = {"onnxruntime": [], "torch": []}
    for _ in range(5):  # alternating
        for module, python in (("onnxruntime", ort_python), ("torch", sys.executable)):
            t = time.perf_counter()
            subprocess.run([python, "-c", f"import {module}"], check=True)
            times[module].append(time.perf_counter() - t)
    return {
        "ort_site_mb": du([ort_site]), "onnxruntime_mb": du(ort_site.glob("onnxruntime*")),
        "torch_mb": du(here.glob("torch*")), "env_site_mb": du([here]),
        "import_s": {k: statistics.median(v) for k, v in times.items()},
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="*", default=list(DEFAULT_CHECKPOINTS))
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/fer2013.csv.gz"))
    ap.add_argument("--work-dir", default="onnx-models", help="where the .onnx files are written")
    ap.add_argument("--batch-sizes", default="64,256")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, help="ORT intra-op threads (torch keeps its default)")
    ap.add_argument("--calibration", default="minmax", choices=("minmax", "entropy", "percentile"))
    ap.add_argument("--full-range", action="store_true",
                    help="8-bit weights (default 7-bit: full range saturates ORT's int16 sums on AVX2 without VNNI)")
    ap.add_argument("--timed", default=",".join(RUNTIMES),
                    help="runtimes timed, comma-separated (accuracy is measured for all), e.g. 'torch int8,ORT int8'")
    ap.add_argument("--default-head", action="store_true")
    ap.add_argument("--footprint", metavar="ORT_PYTHON")
    ap.add_argument("--out")
    args = ap.parse_args()

    import onnxruntime as ort
    import torch

    from fer_features.cnn.checkpoints import load_checkpoint
    from fer_features.cnn.classifier import CNNClassifier
    from fer_features.cnn.int8 import calibration_sample
    from fer_features.data.fer2013 import load_fer2013

    lines: list[str] = []
    say = lambda s="": (print(s, flush=True), lines.append(s))  # noqa: E731
    load_start = os.getloadavg()
    data = load_fer2013(args.data)
    X_train, y_train = data.split("Training")
    X, y = data.split("PrivateTest")
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)

    # ---- build every predictor: {(checkpoint, runtime): object with predict_proba and batch_size}
    predictors, notes, names = {}, [], []
    for path in args.checkpoints:
        name = Path(path).stem
        names.append(name)
        ckpt = load_checkpoint(path)
        mean, std = float(ckpt["mean"]), float(ckpt["std"])
        fp32_onnx, int8_onnx = work / f"{name}.onnx", work / f"{name}.int8.onnx"
        t = time.perf_counter()
        caught = export_onnx(ckpt, fp32_onnx)
        notes.append(f"{name}: exported in {time.perf_counter() - t:.1f} s, {fp32_onnx.stat().st_size / 1e6:.2f} MB"
                     + (f"; exporter warnings: {sorted(set(caught))}" if caught else "; no exporter warnings"))  # fmt: skip
        idx = calibration_sample(len(X_train), 1024, 0)  # the faces `fer quantize` calibrates on
        x_calib = ((X_train[idx].astype(np.float32)[:, None] / 255.0 - mean) / std).astype(np.float32)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_onnx(fp32_onnx, int8_onnx, x_calib, method=args.calibration, reduce_range=not args.full_range)
        notes.append(f"{name}: quantized ({args.calibration}, reduce_range={not args.full_range}) in "
                     f"{time.perf_counter() - t:.1f} s, {int8_onnx.stat().st_size / 1e6:.2f} MB; ops after ORT's "
                     f"optimisation: {_ort_int8_ops(int8_onnx, args.threads)}")  # fmt: skip
        predictors[name, "torch fp32"] = CNNClassifier.from_checkpoint(path, precision="fp32", device="cpu")
        predictors[name, "torch int8"] = CNNClassifier.from_checkpoint(path, precision="int8")
        predictors[name, "ORT fp32"] = ORTNet(fp32_onnx, mean, std, args.threads)
        predictors[name, "ORT int8"] = ORTNet(int8_onnx, mean, std, args.threads)
        print(notes[-2], notes[-1], sep="\n", flush=True)

    # ---- accuracy (batch size does not change the output) and the warm-up
    proba = {key: p.predict_proba(X) for key, p in predictors.items()}
    classes = predictors[names[0], "torch fp32"].classes_
    acc = {key: float(np.mean(classes[p.argmax(1)] == y)) for key, p in proba.items()}
    agree = {key: float(np.mean(p.argmax(1) == proba[key[0], "torch fp32"].argmax(1))) for key, p in proba.items()}
    maxdiff = {key: float(np.abs(p - proba[key[0], "torch fp32"]).max()) for key, p in proba.items()}
    for rt in RUNTIMES:
        mean_p = sum(proba[n, rt] for n in names) / len(names)
        ref = sum(proba[n, "torch fp32"] for n in names) / len(names)
        acc["ensemble", rt] = float(np.mean(classes[mean_p.argmax(1)] == y))
        agree["ensemble", rt] = float(np.mean(mean_p.argmax(1) == ref.argmax(1)))
        maxdiff["ensemble", rt] = float(np.abs(mean_p - ref).max())

    # ---- speed: rounds of every (network, runtime, batch size) in turn
    torch_threads = torch.get_num_threads()
    seconds: dict[tuple, list[float]] = {}
    timed = [rt for rt in RUNTIMES if rt in args.timed.split(",")]
    for r in range(args.rounds):
        for name in names:
            for rt in timed:
                for b in sizes:
                    p = predictors[name, rt]
                    p.batch_size = b
                    t = time.perf_counter()
                    p.predict_proba(X)
                    seconds.setdefault((name, rt, b), []).append(time.perf_counter() - t)
        print(f"round {r + 1}/{args.rounds} done, 1-min load {os.getloadavg()[0]:.2f}", flush=True)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    for rt in timed:
        for b in sizes:
            med["ensemble", rt, b] = statistics.median(sum(seconds[n, rt, b][r] for n in names) for r in range(args.rounds))

    # ---- report
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), platform.processor())
    flags = next((ln.split(":", 1)[1].split() for ln in open("/proc/cpuinfo") if ln.startswith("flags")), [])
    isa = [f for f in flags if f.startswith(("avx512", "amx")) or "vnni" in f] or ["avx2" if "avx2" in flags else "no avx2"]
    say(f"# CNN inference: ONNX Runtime against torch\n\n`{' '.join(['python', *sys.argv])}`\n")
    say(f"3,589 PrivateTest crops of `{Path(args.data).name}`; crops/s: one whole predict call (standardisation "
        f"included), median of {args.rounds} alternating rounds; agreement: top-1 equal to torch fp32's; "
        "max |Δp|: the largest probability difference from torch fp32.\n")  # fmt: skip
    head = "| model | runtime | PrivateTest accuracy | top-1 agreement | max \\|Δp\\| | " + " | ".join(f"crops/s @{b}" for b in sizes) + " |"
    say(head)
    say("| --- | --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in sizes) + " |")
    for name in [*names, "ensemble"]:
        for rt in RUNTIMES:
            speeds = " | ".join(f"{len(X) / med[name, rt, b]:,.0f}" if rt in timed else "–" for b in sizes)
            label = name if name != "ensemble" else f"mean of {len(names)}"
            say(f"| {label} | {rt} | {acc[name, rt]:.4f} | {agree[name, rt]:.4f} | {maxdiff[name, rt]:.2g} | {speeds} |")

    if args.default_head:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from fer_features.features.cnn import CNNEmbedding

        name, path = names[0], args.checkpoints[0]
        emb8 = CNNEmbedding(checkpoint=path, precision="int8").fit(X_train[:1], y_train[:1])
        t = time.perf_counter()
        head = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000, random_state=0))
        head.fit(emb8.transform(X_train), y_train)
        emb = {"torch int8": emb8.transform(X),
               "torch fp32": CNNEmbedding(checkpoint=path, precision="fp32", device="cpu").fit(X[:1], y[:1]).transform(X),
               "ORT fp32": predictors[name, "ORT fp32"].embed(X), "ORT int8": predictors[name, "ORT int8"].embed(X)}  # fmt: skip
        say(f"\nDefault pipeline's head (StandardScaler → LogisticRegression C=0.1) fitted on {name}'s torch-int8 "
            f"Training embeddings ({time.perf_counter() - t:.0f} s), scored with each runtime's PrivateTest embeddings:\n")  # fmt: skip
        say("| embeddings from | PrivateTest accuracy | top-1 agreement with torch int8 |")
        say("| --- | ---: | ---: |")
        ref = head.predict(emb["torch int8"])
        for rt in RUNTIMES:
            pred = head.predict(emb[rt])
            say(f"| {rt} | {np.mean(pred == y):.4f} | {np.mean(pred == ref):.4f} |")

    say("\nNotes:\n")
    for n in notes:
        say(f"- {n}")
    load_end = os.getloadavg()
    say(f"\ntorch {torch.__version__} ({torch_threads} threads, quantized engine "
        f"{torch.backends.quantized.engine}), onnxruntime {ort.__version__} ({args.threads} intra-op threads), "
        f"numpy {np.__version__}; {cpu} ({os.cpu_count()} cores; {', '.join(isa)}); {platform.platform()}; "
        f"load average {load_start[0]:.2f}/{load_start[1]:.2f}/{load_start[2]:.2f} before, "
        f"{load_end[0]:.2f}/{load_end[1]:.2f}/{load_end[2]:.2f} after; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")  # fmt: skip

    if args.footprint:
        f = footprint(args.footprint)
        say(f"\nFootprint: a venv with only onnxruntime + numpy holds {f['ort_site_mb']} MB of site-packages "
            f"(onnxruntime itself {f['onnxruntime_mb']} MB); torch alone is {f['torch_mb']} MB of this "
            f"environment's {f['env_site_mb']} MB. Start-up, median of 5 alternating: "
            f"`import onnxruntime` {f['import_s']['onnxruntime']:.2f} s, `import torch` {f['import_s']['torch']:.2f} s "
            "(whole interpreter runs).")  # fmt: skip

    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
