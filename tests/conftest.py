"""Shared fixtures: the real FER2013 zip (or a skip), a private cache folder, small synthetic
FER2013 sources built on the fly, learnable synthetic face-crop problems and test photos.

Nothing here copies images out of the real zip into the repository; synthetic files go to
pytest's temporary folders.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from fer_features.config import EMOTIONS, USAGES

#: The shared data set, beside the repository (``../shared/data`` from the repo root).
REAL_ZIP = Path(__file__).parents[1].parent / "shared/data/fer2013.zip"

# split folder of each usage in the Kaggle image-folder layout
_FOLDER_OF_USAGE = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}


def pytest_collection_modifyitems(items):
    """Mark every test that reads the real zip ``slow`` (pyproject's marker), so ``-m "not slow"`` skips them."""
    for item in items:
        if "real_zip" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Point the decoded-data cache at a temporary folder for the whole session (never ~/.cache)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FER_FEATURES_CACHE", str(tmp_path_factory.mktemp("fer-cache")))
        mp.delenv("FER_MODEL", raising=False)
        yield


@pytest.fixture(scope="session", autouse=True)
def _one_blas_openmp_thread():
    """One BLAS/OpenMP thread in this process.

    On a 2-core machine shared with another busy job, OpenMP's spin-waiting makes
    HistGradientBoosting (``gbm``) 50-100x slower with 2 threads than with 1; results do not
    depend on the thread count, only the wall time does.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="session")
def real_zip() -> Path:
    """Path of the real FER2013 zip; skips the test when it is not there."""
    if not REAL_ZIP.is_file():
        pytest.skip(f"real FER2013 zip not found at {REAL_ZIP} (expected ../shared/data/fer2013.zip)")
    return REAL_ZIP


@pytest.fixture(scope="session")
def real_data(real_zip):
    """The real zip decoded once per session (through the session's private cache)."""
    from fer_features.data.fer2013 import load_fer2013

    return load_fer2013(real_zip)


@pytest.fixture(scope="session")
def real_faces(real_zip) -> np.ndarray:
    """A handful of real PublicTest crops, read straight from the zip (never written anywhere)."""
    from PIL import Image

    with zipfile.ZipFile(real_zip) as zf:
        names = sorted(n for n in zf.namelist() if "/PublicTest_" in n and n.startswith("test/happy/"))[:4]
        names += sorted(n for n in zf.namelist() if "/PublicTest_" in n and n.startswith("test/neutral/"))[:4]
        return np.stack([np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("L")) for n in names])


# --------------------------------------------------------------------------- synthetic FER2013 sources


@dataclass
class SyntheticFER:
    """One small FER2013 data set written as a zip, an extracted folder and a CSV."""

    zip: Path
    folder: Path
    csv: Path
    X: np.ndarray  # (n, 48, 48) uint8, in the loader's order (sorted member names)
    y: np.ndarray  # int64 labels
    usage: np.ndarray  # str
    names: list[str]  # member names, e.g. train/happy/Training_0.png


def _png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def write_csv(path: Path, rows) -> Path:
    """Write ``(emotion, pixels, usage)`` rows under the FER2013 header."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerows(rows)
    return path


def pixel_string(image: np.ndarray) -> str:
    return " ".join(map(str, image.ravel().tolist()))


@pytest.fixture
def make_fer(tmp_path):
    """Factory: ``make_fer(per_class=2, extra={member: bytes})`` builds zip, folder and CSV twins.

    ``per_class`` random 48x48 images per emotion and usage (Training_/PublicTest_/PrivateTest_
    prefixes); ``extra`` adds raw members (e.g. a corrupt file) to the zip and the folder only.
    """
    counter = [0]

    def make(per_class: int = 2, extra: dict[str, bytes] | None = None, seed: int = 0) -> SyntheticFER:
        counter[0] += 1
        root = tmp_path / f"fer{counter[0]}"
        folder = root / "fer2013"
        rng = np.random.default_rng(seed)
        members: dict[str, tuple[np.ndarray, int, str]] = {}
        k = 0
        for usage in USAGES:
            for label, emotion in enumerate(EMOTIONS):
                for _ in range(per_class):
                    name = f"{_FOLDER_OF_USAGE[usage]}/{emotion}/{usage}_{k}.png"
                    members[name] = (rng.integers(0, 256, (48, 48), dtype=np.uint8), label, usage)
                    k += 1
        raw = {name: _png_bytes(img) for name, (img, _, _) in members.items()}
        raw.update(extra or {})
        zpath = root / "fer2013.zip"
        root.mkdir(parents=True)
        with zipfile.ZipFile(zpath, "w") as zf:
            for name, data in raw.items():
                zf.writestr(name, data)
        for name, data in raw.items():
            p = folder / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        order = sorted(members)  # the loader reads members in name order
        csv_path = write_csv(
            root / "fer2013.csv",
            [(members[n][1], pixel_string(members[n][0]), members[n][2]) for n in order],
        )
        return SyntheticFER(
            zip=zpath,
            folder=folder,
            csv=csv_path,
            X=np.stack([members[n][0] for n in order]),
            y=np.array([members[n][1] for n in order], np.int64),
            usage=np.array([members[n][2] for n in order]),
            names=order,
        )

    return make


# --------------------------------------------------------------------------- learnable crops


def pattern_images(per_class: int = 20, size: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable 7-class problem: each emotion name is a different simple pattern.

    Returns ``X`` (n, size, size) uint8 and ``labels`` (n,) emotion names; patterns are
    randomly shifted and noisy, so no two images are equal.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    images, labels = [], []
    for emotion in EMOTIONS:
        for _ in range(per_class):
            dx, dy = rng.uniform(0, 2 * np.pi, 2)
            kind = EMOTIONS.index(emotion)
            if kind == 0:  # horizontal stripes
                img = np.sin(yy / 2.0 + dy)
            elif kind == 1:  # vertical stripes
                img = np.sin(xx / 2.0 + dx)
            elif kind == 2:  # diagonal stripes
                img = np.sin((xx + yy) / 2.5 + dx)
            elif kind == 3:  # checkerboard
                img = np.sign(np.sin(xx / 3.0 + dx) * np.sin(yy / 3.0 + dy))
            elif kind == 4:  # rings
                img = np.sin(np.hypot(xx - size / 2, yy - size / 2) / 2.0 + dx)
            elif kind == 5:  # smooth horizontal ramp
                img = (xx / size) * 2 - 1
            else:  # flat
                img = np.zeros_like(xx)
            img = 128 + 90 * img + rng.normal(0, 12, img.shape)
            images.append(np.clip(img, 0, 255).astype(np.uint8))
            labels.append(emotion)
    return np.stack(images), np.array(labels)


@pytest.fixture(scope="session")
def patterns():
    """``(X, labels)`` of :func:`pattern_images` with 20 images per emotion."""
    return pattern_images()


@pytest.fixture(scope="session")
def tiny_model(patterns):
    """A fitted HOG -> logistic-regression pipeline on the synthetic patterns (no real data)."""
    from fer_features.training.pipelines import build_pipeline

    X, labels = patterns
    return build_pipeline("hog", "logreg", pca=20, n_jobs=1).fit(X, labels)


# --------------------------------------------------------------------------- tiny CNNs

#: A network small enough to train in a fraction of a second on 100 images.
TINY = {"widths": (4, 8, 8, 8), "convs_per_stage": 1, "embedding_dim": 16, "dropout": 0.0}


def make_checkpoint(seed: int = 0, net: dict = TINY, mean: float = 0.45, std: float = 0.25) -> dict:
    """A randomly initialised network in the checkpoint format of :func:`~fer_features.cnn.loop.train_cnn` (needs torch)."""
    from dataclasses import asdict

    import torch

    from fer_features.cnn.checkpoints import CHECKPOINT_FORMAT
    from fer_features.cnn.net import build_net
    from fer_features.cnn.recipe import TrainConfig

    torch.manual_seed(seed)
    model = build_net({**net, "n_classes": 7})
    with torch.no_grad():  # batch-norm statistics that are not the identity, so eval mode matters
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(TrainConfig(net=dict(net))),
        "state_dict": {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()},
        "mean": mean,
        "std": std,
        "n_classes": 7,
        "history": [],
        "best_epoch": 0,
        "val_accuracy": 0.0,
        "device": "cpu",
        "train_seconds": 0.0,
    }


# --------------------------------------------------------------------------- photos


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("photos")


@pytest.fixture(scope="session")
def astronaut_png(photo_dir) -> Path:
    """skimage's astronaut (one frontal face, 512x512 RGB) saved as PNG."""
    from PIL import Image
    from skimage import data

    path = photo_dir / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


@pytest.fixture(scope="session")
def faceless_png(photo_dir) -> Path:
    """skimage's brick wall (512x512 grey): no detector finds a face in it (yuface does find the
    cameraman's, in skimage's camera(), which dlib's HOG detector misses)."""
    from PIL import Image
    from skimage import data

    path = photo_dir / "brick.png"
    Image.fromarray(data.brick()).save(path)
    return path


@pytest.fixture(scope="session")
def crop_png(tmp_path_factory, patterns) -> Path:
    """One synthetic 48x48 pattern saved as PNG: ``fer predict`` classifies it as a face crop."""
    from PIL import Image

    path = tmp_path_factory.mktemp("crops") / "crop.png"
    Image.fromarray(patterns[0][3]).save(path)
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few hundred bytes whose IHDR claims ``width`` x ``height`` grey pixels (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------- the CLI


def fer(*args, **kwargs):
    """Run the ``fer`` command line in-process (typer's CliRunner); arguments are str()-ed."""
    from typer.testing import CliRunner

    from fer_features.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


def assert_user_error(result, *fragments):
    """Exit code 2, a one-line message on stderr, no traceback."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "error:" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# --------------------------------------------------------------------------- fer serve


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, tiny_model) -> Path:
    """:func:`tiny_model` saved as a model file with a card (needs no real data)."""
    from fer_features.persist.files import save_model

    return save_model(tiny_model, tmp_path_factory.mktemp("serve-model") / "tiny.skops", {"features": "hog", "classifier": "logreg"})


@pytest.fixture(scope="session")
def live_server(tiny_model_path):
    """``fer serve``'s app on a free port of 127.0.0.1, run by uvicorn in a thread: its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    from fer_features.serve import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(tiny_model_path), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


#: Inputs every face-image transformer refuses, with the message each must give (a parametrize mark).
BAD_IMAGES = pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((48, 48), np.uint8), r"single image\? pass X\[None\]"),
        (np.zeros((2, 48, 48), np.float64), r"uint8.*float64"),
        (np.zeros((2, 48, 48, 3), np.uint8), r"\(n_samples, height, width\).*\(2, 48, 48, 3\)"),
    ],
    ids=["2d", "float", "4d"],
)
