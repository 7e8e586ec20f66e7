"""The CNN's CPU-native arithmetic and training recipe: bf16 vs fp32, channels_last, ten-crop TTA,
mixup / CutMix, soft-label cross-entropy, weight EMA, and the medium preset. Tiny nets only."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from test_cnn import (  # noqa: E402, F401 - _one_torch_thread: the same autouse fixture here
    TINY,
    _one_torch_thread,
    make_checkpoint,
    random_faces,
    random_labels,
    tiny_config,
)

import fer_features.torch_utils as torch_utils  # noqa: E402  (native_bf16 lives there)
from fer_features.cnn.checkpoints import (
    net_from_checkpoint,  # noqa: E402
    save_checkpoint,
)
from fer_features.cnn.classifier import CNNClassifier  # noqa: E402
from fer_features.cnn.loop import train_cnn
from fer_features.cnn.net import build_net  # noqa: E402
from fer_features.cnn.presets import PRESETS  # noqa: E402
from fer_features.cnn.recipe import (
    TrainConfig,
    mix_batch,
    predict_logits,
    soft_cross_entropy,
    to_tensor,  # noqa: E402
    tta_views,
)
from fer_features.features.cnn import CNNEmbedding
from fer_features.torch_utils import use_bf16

CPU = torch.device("cpu")


# --------------------------------------------------------------------------- precision


def test_use_bf16_follows_the_cpu_and_the_option(monkeypatch):
    monkeypatch.setattr(torch_utils, "native_bf16", lambda: True)
    assert use_bf16(CPU, "auto") and use_bf16(CPU, "bf16") and not use_bf16(CPU, "fp32")
    monkeypatch.setattr(torch_utils, "native_bf16", lambda: False)
    assert not use_bf16(CPU, "auto"), "a CPU without native bf16 falls back to fp32"
    assert use_bf16(CPU, "bf16"), "bf16 can be forced"
    assert use_bf16(torch.device("cuda"), "auto")
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        use_bf16(CPU, "fp8")
    with pytest.raises(ValueError, match="unknown precision"):
        TrainConfig(precision="half")


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open
    cpuinfo = tmp_path / "cpuinfo"

    def fake_open(path, *args, **kwargs):
        return real_open(cpuinfo if path == "/proc/cpuinfo" else path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 avx512bw\n")
    assert torch_utils.native_bf16()
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not torch_utils.native_bf16()


def test_bf16_logits_agree_with_fp32():
    ckpt = make_checkpoint(seed=3)
    net = net_from_checkpoint(ckpt, CPU)
    X = to_tensor(random_faces(200, seed=8), ckpt["mean"], ckpt["std"])
    fp32 = predict_logits(net, X, CPU, precision="fp32", channels_last=False)
    bf16 = predict_logits(torch_utils.to_channels_last(net), X, CPU, precision="bf16")
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert not torch.equal(bf16, fp32), "bf16 was not used"
    scale = fp32.abs().max()
    assert (bf16 - fp32).abs().max() < 0.05 * scale
    agree = (bf16.argmax(1) == fp32.argmax(1)).float().mean()
    assert agree >= 0.9


def test_channels_last_changes_layout_not_results():
    ckpt = make_checkpoint(seed=4)
    X = to_tensor(random_faces(64, seed=9), ckpt["mean"], ckpt["std"])
    nchw = predict_logits(net_from_checkpoint(ckpt, CPU), X, CPU, precision="fp32", channels_last=False)
    net_cl = torch_utils.to_channels_last(net_from_checkpoint(ckpt, CPU))
    assert net_cl.features[0].weight.is_contiguous(memory_format=torch.channels_last)
    cl = predict_logits(net_cl, X, CPU, precision="fp32", channels_last=True)
    torch.testing.assert_close(cl, nchw, rtol=1e-4, atol=1e-5)


def test_embedding_precision_is_a_parameter(tmp_path):
    path = save_checkpoint(make_checkpoint(seed=5), tmp_path / "c.pt")
    X = random_faces(50, seed=10)
    fp32 = CNNEmbedding(checkpoint=str(path), device="cpu", precision="fp32").fit(X).transform(X)
    bf16 = CNNEmbedding(checkpoint=str(path), device="cpu", precision="bf16").fit(X).transform(X)
    assert fp32.dtype == bf16.dtype == np.float32
    assert not np.array_equal(fp32, bf16)
    np.testing.assert_allclose(bf16, fp32, atol=0.05 * np.abs(fp32).max())


# --------------------------------------------------------------------------- TTA


def test_tta_views():
    x = torch.arange(2 * 48 * 48, dtype=torch.float32).reshape(2, 1, 48, 48)
    assert len(tta_views(x, "none")) == 1 and tta_views(x, False)[0] is x
    flip = tta_views(x, True)
    assert len(flip) == 2 and torch.equal(flip[1], x.flip(3))
    ten = tta_views(x, "ten-crop")
    assert len(ten) == 10 and all(v.shape == (2, 1, 44, 44) for v in ten)
    assert torch.equal(ten[0], x[..., :44, :44]) and torch.equal(ten[3], x[..., 4:, 4:])
    assert torch.equal(ten[4], x[..., 2:46, 2:46])  # the centre crop
    assert torch.equal(ten[5], ten[0].flip(3))
    with pytest.raises(ValueError, match="unknown TTA mode 'twelve'"):
        tta_views(x, "twelve")


def test_ten_crop_tta_averages_the_ten_views():
    ckpt = make_checkpoint(seed=6)
    net = net_from_checkpoint(ckpt, CPU)
    X = to_tensor(random_faces(20, seed=11), ckpt["mean"], ckpt["std"])
    got = predict_logits(net, X, CPU, tta="ten-crop", precision="fp32", channels_last=False)
    with torch.no_grad():
        expected = sum(net(v) for v in tta_views(X, "ten-crop")) / 10
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- mixing and losses


def test_soft_cross_entropy_matches_torch_on_one_hot_targets():
    logits = torch.randn(16, 7, generator=torch.Generator().manual_seed(0))
    y = torch.randint(7, (16,), generator=torch.Generator().manual_seed(1))
    for eps in (0.0, 0.1):
        expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=eps)
        got = soft_cross_entropy(logits, torch.nn.functional.one_hot(y, 7).float(), eps)
        torch.testing.assert_close(got, expected)


def test_mix_batch_mixes_images_and_targets_alike():
    x = torch.rand(32, 1, 48, 48)
    t = torch.nn.functional.one_hot(torch.arange(32) % 7, 7).float()
    same = mix_batch(x, t, tiny_config(), torch.Generator().manual_seed(0))
    assert same[0] is x and same[1] is t  # both off: untouched
    for mode in ("mixup", "cutmix"):
        xm, tm = mix_batch(x, t, tiny_config(**{mode: 1.0}), torch.Generator().manual_seed(0))
        assert xm.shape == x.shape and tm.shape == t.shape
        torch.testing.assert_close(tm.sum(1), torch.ones(32))
        assert not torch.equal(xm, x)
        # each image is lam * own + (1 - lam) * partner; own share = the target's weight on its class
        own = tm[torch.arange(32), torch.arange(32) % 7]
        assert (own >= 0).all() and (own <= 1).all() and own.min() < 1
    # CutMix pastes a box: every pixel is the image's own or its partner's, exactly
    xc, _ = mix_batch(x, t, tiny_config(cutmix=1.0), torch.Generator().manual_seed(3))
    assert ((xc == x) | torch.isin(xc, x)).all()


def test_training_on_soft_labels_uses_the_distributions():
    X, y = random_faces(96, seed=4), random_labels(96, seed=4)
    Xv, yv = random_faces(40, seed=5), random_labels(40, seed=5)
    hard = train_cnn(X, y, Xv, yv, config=tiny_config(seed=1), device="cpu")
    one_hot = np.eye(7, dtype=np.float32)[y] * 3  # unnormalised votes: normalised inside
    same = train_cnn(X, y, Xv, yv, config=tiny_config(seed=1), device="cpu", soft_train=one_hot)
    assert [r["loss"] for r in same["history"]] == [r["loss"] for r in hard["history"]]
    votes = np.random.default_rng(0).random((96, 7)).astype(np.float32)
    soft = train_cnn(X, y, Xv, yv, config=tiny_config(seed=1), device="cpu", soft_train=votes)
    assert [r["loss"] for r in soft["history"]] != [r["loss"] for r in hard["history"]]
    with pytest.raises(ValueError, match="soft_train must have shape"):
        train_cnn(X, y, Xv, yv, config=tiny_config(), device="cpu", soft_train=votes[:10])


def test_mixed_targets_are_what_the_loss_sees(monkeypatch, tmp_path):
    """FER2013 one-hot mixed with vote distributions (ferplus_soft_targets' form) reach the loss as
    they are; a resume file of other targets is not resumed."""
    import fer_features.cnn.loop as loop

    X, y = random_faces(64, seed=4), random_labels(64, seed=4)
    Xv, yv = random_faces(24, seed=5), random_labels(24, seed=5)
    votes = np.random.default_rng(1).dirichlet(np.ones(7), 64).astype(np.float32)
    mixed = 0.5 * np.eye(7, dtype=np.float32)[y] + 0.5 * votes
    seen = []
    real = loop.soft_cross_entropy
    monkeypatch.setattr(loop, "soft_cross_entropy", lambda logits, t, s=0.0: seen.append(t.clone()) or real(logits, t, s))
    train_cnn(X, y, Xv, yv, config=tiny_config(epochs=1), device="cpu", soft_train=mixed)
    rows = torch.cat(seen).numpy()
    assert len(rows) == 64
    np.testing.assert_allclose(np.sort(rows, axis=0), np.sort(mixed, axis=0), rtol=1e-6)

    class Stop(Exception):
        pass

    def stop(record):
        if record["epoch"] == 2:  # epoch 1 was saved
            raise Stop

    resume = tmp_path / "run.resume.pt"
    with pytest.raises(Stop):
        train_cnn(X, y, Xv, yv, config=tiny_config(epochs=3), device="cpu", soft_train=mixed, resume_path=resume, on_epoch=stop)
    other = 0.8 * np.eye(7, dtype=np.float32)[y] + 0.2 * votes  # the same sums, other targets
    epochs = []
    train_cnn(X, y, Xv, yv, config=tiny_config(epochs=3), device="cpu", soft_train=other, resume_path=resume,
              on_epoch=lambda r: epochs.append(r["epoch"]))  # fmt: skip
    assert epochs == [1, 2, 3]


def test_ema_keeps_the_averaged_weights():
    X, y = random_faces(96, seed=4), random_labels(96, seed=4)
    Xv, yv = random_faces(40, seed=5), random_labels(40, seed=5)
    plain = train_cnn(X, y, Xv, yv, config=tiny_config(seed=2), device="cpu")
    ema = train_cnn(X, y, Xv, yv, config=tiny_config(seed=2, ema=0.5), device="cpu")
    assert plain["state_dict"].keys() == ema["state_dict"].keys()  # a plain FERNet state, no "module." prefix
    key = "features.0.weight"
    assert not torch.equal(plain["state_dict"][key], ema["state_dict"][key])
    with pytest.raises(ValueError, match="ema must be a decay"):
        TrainConfig(ema=1.0)


def test_epoch_records_say_where_the_time_goes():
    X, y = random_faces(64, seed=4), random_labels(64, seed=4)
    ckpt = train_cnn(X, y, X[:20], y[:20], config=tiny_config(epochs=1), device="cpu")
    rec = ckpt["history"][0]
    parts = rec["augment_seconds"] + rec["step_seconds"] + rec["val_seconds"]
    assert 0 < parts <= rec["seconds"] + 0.05
    assert ckpt["precision"] in ("bf16", "fp32")


# --------------------------------------------------------------------------- presets and estimator


def test_medium_preset_builds_with_per_stage_convs():
    net = build_net({**PRESETS["medium"], "n_classes": 7})
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == sum(PRESETS["medium"]["convs_per_stage"]) == 7
    assert net(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
    with pytest.raises(ValueError, match="3 entries for 4 stages"):
        build_net({**TINY, "convs_per_stage": (1, 1, 1), "n_classes": 7})


def test_classifier_params_are_the_train_config():
    from dataclasses import fields

    clf = CNNClassifier(ema=0.99, mixup=0.2, precision="fp32", weight_decay=1e-4)
    cfg = clf.train_config()
    assert (cfg.ema, cfg.mixup, cfg.precision, cfg.weight_decay) == (0.99, 0.2, "fp32", 1e-4)
    params = clf.get_params()
    # every TrainConfig field but the derived net is an estimator parameter, with the same default
    defaults = CNNClassifier().train_config()
    for f in fields(TrainConfig):
        if f.name != "net":
            assert f.name in params
            assert getattr(defaults, f.name) == getattr(TrainConfig(), f.name), f.name


def test_classifier_fits_vote_distributions_in_its_class_order(monkeypatch):
    from fer_features.config import EMOTIONS8

    monkeypatch.setitem(PRESETS, "tiny", dict(TINY))
    rng = np.random.default_rng(0)
    X, Xv = random_faces(64, seed=1), random_faces(24, seed=2)
    votes = rng.random((64, 8)).astype(np.float32)
    y = np.asarray(EMOTIONS8)[votes.argmax(1)]
    yv = np.asarray(EMOTIONS8)[rng.integers(0, 8, 24)]
    clf = CNNClassifier(preset="tiny", epochs=1, batch_size=16, device="cpu")
    clf.fit(X, y, X_val=Xv, y_val=yv, soft=votes, soft_classes=EMOTIONS8)
    assert list(clf.classes_) == sorted(EMOTIONS8) and clf.checkpoint_["soft_labels"]
    assert clf.predict_proba(Xv).shape == (24, 8)
    tiny = CNNClassifier(preset="tiny", epochs=1, device="cpu")
    with pytest.raises(ValueError, match="do not cover"):
        tiny.fit(X, y, X_val=Xv, y_val=yv, soft=votes[:, :7], soft_classes=EMOTIONS8[:7])
    with pytest.raises(ValueError, match="needs X_val"):
        tiny.fit(X, y, soft=votes, soft_classes=EMOTIONS8)
