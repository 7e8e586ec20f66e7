"""Photometric augmentation (fer_features.cnn.photometric) and the configs and checkpoints written
before it existed. Tiny tensors and networks, one torch thread."""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import test_cnn  # noqa: E402
from conftest import make_checkpoint  # noqa: E402
from test_cnn import _one_torch_thread, interrupted_run, tiny_config  # noqa: E402, F401 - _one_torch_thread: autouse here too

from fer_features.benchmark.shifts import SHIFTS, blur, low_resolution  # noqa: E402
from fer_features.cnn.checkpoints import load_checkpoint, net_from_checkpoint, save_checkpoint  # noqa: E402
from fer_features.cnn.classifier import CNNClassifier  # noqa: E402
from fer_features.cnn.loop import train_cnn  # noqa: E402
from fer_features.cnn.photometric import PHOTOMETRIC_RANGES, _blur, _low_resolution, jpeg_quantise, photometric  # noqa: E402
from fer_features.cnn.recipe import TrainConfig, augment  # noqa: E402

tiny_data, val_counter = test_cnn.tiny_data, test_cnn.val_counter  # test_cnn's fixtures, here too

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def _faces(n=8, seed=0):
    """Smooth random faces, uint8 (n, 48, 48): JPEG and blur behave on them as on photos."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).integers(0, 256, (n, 48, 48)).astype(np.float64)
    return np.clip(gaussian_filter(noise, (0, 1.5, 1.5)) * 2 - 128, 0, 255).astype(np.uint8)


def _grey(X, device="cpu"):
    return torch.from_numpy(X).float()[:, None].to(device) / 255.0


@pytest.mark.parametrize("device", DEVICES)
def test_photometric_keeps_shape_dtype_device_and_is_seeded(device):
    x = (_grey(_faces(32), device) - 0.5) / 0.25
    out = photometric(x, 0.8, _gen(0, device), mean=0.5, std=0.25)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert torch.equal(out, photometric(x, 0.8, _gen(0, device), mean=0.5, std=0.25))
    assert not torch.equal(out, photometric(x, 0.8, _gen(1, device), mean=0.5, std=0.25))
    grey = out * 0.25 + 0.5
    assert grey.min() >= -1e-6 and grey.max() <= 1 + 1e-6, "grey levels stay in 0..255"
    changed = (out - x).abs().amax(dim=(1, 2, 3)) > 1e-6
    assert 0 < int(changed.sum()) < len(x)  # p=0.8 of 32: some of each (chance of failing ~1e-3)


def test_photometric_off_is_the_identity_and_draws_nothing():
    x = torch.randn(8, 1, 48, 48)
    g = _gen(5)
    assert photometric(x, 0.0, g) is x
    assert torch.equal(g.get_state(), _gen(5).get_state())
    # so augment without it draws what it drew before (test_cnn's augmentation tests pin that)
    g = _gen(3)
    augment(x, TrainConfig(max_rotation=0, max_shift=0, max_scale=0, erasing=0.0), g)
    expected = _gen(3)
    torch.rand(8, generator=expected)
    for _ in range(4):  # angle, scale, flip, shift x, shift y
        torch.rand(8, generator=expected)
    assert torch.equal(g.get_state(), expected.get_state())


def test_augment_applies_photometric_between_the_warp_and_erasing():
    x = (_grey(_faces(64)) - 0.4) / 0.3
    warp_only = TrainConfig(max_rotation=0, max_shift=0, max_scale=0, erasing=0.0)
    flipped = augment(x, warp_only, _gen(2))  # the flips are drawn first either way
    out = augment(x, TrainConfig(**{**warp_only.__dict__, "photometric": 0.5}), _gen(2), mean=0.4, std=0.3)
    same = torch.isclose(out, flipped, atol=1e-5).flatten(1).all(1)
    assert 10 < int(same.sum()) < 54  # about half transformed
    with pytest.raises(ValueError, match="probability in"):
        TrainConfig(photometric=1.5)


def test_every_transform_reaches_the_benchmarks_strongest_severity():
    strongest = {name: PHOTOMETRIC_RANGES[name][1] for name in PHOTOMETRIC_RANGES}
    for name, value in strongest.items():
        levels = SHIFTS[name].levels
        assert value == (min(levels) if name in ("contrast", "jpeg", "low_resolution") else max(levels)), name


def test_jpeg_matches_pillow():
    from PIL import Image

    X = _faces(6, seed=3)
    for quality in (20, 40, 75):
        pil = []
        for img in X:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, format="JPEG", quality=quality)
            pil.append(np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L")))
        ours = jpeg_quantise(_grey(X), torch.full((len(X),), float(quality)))[:, 0].numpy() * 255
        err = np.abs(ours - np.stack(pil)).mean()
        assert err < 0.5, f"quality {quality}: {err:.2f} grey levels from Pillow's JPEG"
        assert np.abs(ours - X).mean() > 4 * err, "and far less than the compression's own loss"
    odd = jpeg_quantise(torch.rand(2, 1, 45, 50), torch.tensor([30.0, 30.0]))
    assert odd.shape == (2, 1, 45, 50)


def test_blur_and_low_resolution_match_the_benchmarks_shifts():
    X = _faces(4, seed=4)
    ours = _blur(_grey(X), torch.full((4,), 2.0), None)[:, 0].numpy() * 255
    assert np.abs(ours - blur(X, 2.0, None)).mean() < 1.0
    ours = _low_resolution(_grey(X), torch.tensor([16.0, 16.0, 24.0, 24.0]), None)[:, 0].numpy() * 255
    theirs = np.concatenate([low_resolution(X[:2], 16, None), low_resolution(X[2:], 24, None)])
    assert np.abs(ours - theirs).mean() < 1.0


def test_training_with_photometric_runs_and_is_deterministic(tiny_data):
    cfg = tiny_config(epochs=1, photometric=0.5)
    a, b = train_cnn(*tiny_data, config=cfg, device="cpu"), train_cnn(*tiny_data, config=cfg, device="cpu")
    assert a["config"]["photometric"] == 0.5
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    off = train_cnn(*tiny_data, config=tiny_config(epochs=1), device="cpu")
    assert a["history"][0]["loss"] != off["history"][0]["loss"]


def test_a_checkpoint_written_before_photometric_loads(tmp_path, tiny_data):
    ckpt = make_checkpoint(seed=2)
    del ckpt["config"]["photometric"]
    ckpt["classes"] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    path = save_checkpoint(ckpt, tmp_path / "old.pt")
    clf = CNNClassifier.from_checkpoint(path, device="cpu")
    assert clf.photometric == 0.0 and clf.train_config().photometric == 0.0
    net_from_checkpoint(load_checkpoint(path), torch.device("cpu"))
    # and it starts a run: a warm restart compares networks, not recipes
    tuned = train_cnn(*tiny_data, config=tiny_config(epochs=1, photometric=0.5, init_checkpoint=str(path)), device="cpu")
    assert tuned["init"]["path"] == str(path)


def test_a_resume_file_written_before_photometric_resumes(tiny_data, tmp_path, val_counter):
    cfg = tiny_config(epochs=3)
    resume = tmp_path / "run.resume.pt"
    val_counter()
    interrupted_run(tiny_data, cfg, resume)
    saved = torch.load(resume, weights_only=False)
    del saved["config"]["photometric"]  # as written before the field existed
    torch.save(saved, resume)
    val_counter(1)
    trained = []
    train_cnn(*tiny_data, config=cfg, device="cpu", resume_path=resume, on_epoch=trained.append)
    assert [rec["epoch"] for rec in trained] == [2, 3]
    # but not into a run that turns it on
    val_counter()
    interrupted_run(tiny_data, cfg, resume)
    val_counter()
    trained = []
    train_cnn(*tiny_data, config=tiny_config(epochs=3, photometric=0.5), device="cpu", resume_path=resume, on_epoch=trained.append)
    assert [rec["epoch"] for rec in trained] == [1, 2, 3]
