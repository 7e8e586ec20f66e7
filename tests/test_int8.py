"""Int8 inference of the CNN (``fer_features.cnn.int8``): calibration, the quantized network
against float32, the estimators' ``precision='int8'``, persistence and ``fer quantize``.

Tiny networks on one torch thread, as in ``test_cnn.py``.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fer_features.torch_utils as torch_utils  # noqa: E402
from fer_features.cnn.estimators import CNNClassifier, CNNEmbedding  # noqa: E402
from fer_features.cnn.int8 import (  # noqa: E402
    add_int8_calibration,
    calibrate_checkpoint,
    calibrate_int8,
    calibration_sample,
    fastest_batch_size,
    int8_network,
)
from fer_features.cnn.train import load_checkpoint, net_from_checkpoint, save_checkpoint, to_tensor  # noqa: E402
from fer_features.datasets import EMOTIONS  # noqa: E402
from conftest import assert_user_error, fer, write_csv, pixel_string  # noqa: E402
from test_cnn import TINY, make_checkpoint, random_faces, skops_round_trip  # noqa: E402

#: Wider than test_cnn's TINY so int8 rounding is small against the spread of the logits.
NET = {"widths": (8, 16, 16, 32), "convs_per_stage": (1, 1, 1, 2), "embedding_dim": 32, "dropout": 0.0}


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch_utils, "set_cpu_threads", lambda *a: None)
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def faces():
    """Smooth random faces (blurred noise), closer to photos' statistics than white noise."""
    from scipy.ndimage import gaussian_filter

    raw = random_faces(400, seed=3).astype(np.float32)
    smooth = np.stack([gaussian_filter(f, 2.0) for f in raw])
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255
    return smooth.astype(np.uint8)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory, faces):
    """A checkpoint of a random network with class names and its int8 calibration, on disk."""
    ckpt = make_checkpoint(seed=1, net=NET)
    ckpt["classes"] = sorted(EMOTIONS)
    ckpt["int8"] = calibrate_checkpoint(ckpt, faces[:300], n=300)
    path = tmp_path_factory.mktemp("int8") / "net.pt"
    save_checkpoint(ckpt, path)
    return path, ckpt


def float_and_int8_logits(ckpt, X):
    net = net_from_checkpoint(ckpt, torch.device("cpu"))
    xt = to_tensor(X, ckpt["mean"], ckpt["std"])
    qnet = int8_network(net, ckpt["int8"])
    with torch.inference_mode():
        return net(xt).numpy(), qnet(xt).numpy(), net.embed(xt).numpy(), qnet.embed(xt).numpy()


def test_calibration_is_plain_numbers_for_every_quantized_layer(calibrated):
    _, ckpt = calibrated
    cal = ckpt["int8"]
    assert cal["n_faces"] == 300 and cal["engine"] in torch.backends.quantized.supported_engines
    convs = sum(NET["convs_per_stage"])
    # the input's quantize stub, each fused conv, the embedding and the classifier
    assert len(cal["scales"]) == 1 + convs + 2
    for scale, zero_point in cal["scales"].values():
        assert isinstance(scale, float) and scale > 0 and isinstance(zero_point, int) and 0 <= zero_point <= 255


def test_int8_logits_and_embedding_follow_float32(calibrated, faces):
    _, ckpt = calibrated
    held_out = faces[300:]  # not the calibration faces
    logits, q_logits, emb, q_emb = float_and_int8_logits(ckpt, held_out)
    assert q_logits.shape == logits.shape == (100, 7) and q_logits.dtype == np.float32
    assert q_emb.shape == emb.shape == (100, NET["embedding_dim"])
    spread = logits.std()
    assert np.abs(q_logits - logits).mean() < 0.1 * spread
    assert np.abs(q_emb - emb).mean() < 0.1 * emb.std()
    assert (q_logits.argmax(1) == logits.argmax(1)).mean() >= 0.8


def test_a_wrong_calibration_is_refused_or_changes_the_output(calibrated, faces):
    _, ckpt = calibrated
    net = net_from_checkpoint(ckpt, torch.device("cpu"))
    scales = dict(ckpt["int8"]["scales"])
    scales.pop(next(iter(scales)))
    with pytest.raises(ValueError, match="calibrate it again"):
        int8_network(net, {**ckpt["int8"], "scales": scales})
    # activation scales ten times too small saturate the uint8 range: the output must differ
    squeezed = {k: [v[0] / 10, v[1]] for k, v in ckpt["int8"]["scales"].items()}
    xt = to_tensor(faces[300:], ckpt["mean"], ckpt["std"])
    with torch.inference_mode():
        good = int8_network(net, ckpt["int8"])(xt)
        bad = int8_network(net, {**ckpt["int8"], "scales": squeezed})(xt)
    assert not torch.allclose(good, bad)


def test_calibration_needs_faces():
    net = net_from_checkpoint(make_checkpoint(net=NET), torch.device("cpu"))
    with pytest.raises(ValueError, match="at least one face"):
        calibrate_int8(net, torch.zeros((0, 1, 48, 48)))


def test_calibration_sample_is_seeded_and_bounded():
    a, b = calibration_sample(5000, 100, seed=0), calibration_sample(5000, 100, seed=0)
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a)) == 100 and a.max() < 5000
    assert len(calibration_sample(50, 100)) == 50


def test_classifier_int8_predicts_like_the_network(calibrated, faces):
    path, ckpt = calibrated
    clf = CNNClassifier.from_checkpoint(path, precision="int8", device="cpu")
    assert clf.inference_precision() == "int8"
    proba = clf.predict_proba(faces[300:])
    assert proba.shape == (100, 7) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    _, q_logits, _, _ = float_and_int8_logits(ckpt, faces[300:])
    np.testing.assert_array_equal(proba.argmax(1), q_logits.argmax(1))
    flip = CNNClassifier.from_checkpoint(path, precision="int8", device="cpu", tta="flip").predict_proba(faces[300:])
    assert not np.allclose(flip, proba)  # the mirror view is averaged in


def test_embedding_int8(calibrated, faces):
    path, ckpt = calibrated
    emb = CNNEmbedding(checkpoint=str(path), precision="int8", device="cpu").fit(faces[:10]).transform(faces[300:])
    _, _, _, q_emb = float_and_int8_logits(ckpt, faces[300:])
    assert emb.dtype == np.float32
    np.testing.assert_allclose(emb, q_emb, rtol=1e-5, atol=1e-5)


def test_int8_classifier_survives_pickle_and_skops(calibrated, faces):
    path, _ = calibrated
    clf = CNNClassifier.from_checkpoint(path, precision="int8", device="cpu")
    before = clf.predict_proba(faces[300:320])  # builds the int8 network, which is not saved
    assert "_int8_net" in clf.__dict__ and "_int8_net" not in clf.__getstate__()
    for again in (pickle.loads(pickle.dumps(clf)), skops_round_trip(clf)):
        np.testing.assert_allclose(again.predict_proba(faces[300:320]), before, atol=1e-12)


def test_int8_without_calibration_says_how_to_add_it(tmp_path):
    ckpt = make_checkpoint(net=TINY)
    ckpt["classes"] = sorted(EMOTIONS)
    save_checkpoint(ckpt, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="fer quantize"):
        CNNClassifier.from_checkpoint(tmp_path / "old.pt", precision="int8")
    with pytest.raises(ValueError, match="fer quantize"):
        CNNEmbedding(checkpoint=str(tmp_path / "old.pt"), precision="int8").fit(random_faces(2))
    assert CNNClassifier.from_checkpoint(tmp_path / "old.pt").inference_precision() in ("bf16", "fp32")


def test_add_int8_calibration_writes_a_loadable_checkpoint(tmp_path, faces):
    ckpt = make_checkpoint(net=TINY)
    ckpt["classes"] = sorted(EMOTIONS)
    save_checkpoint(ckpt, tmp_path / "a.pt")
    cal = add_int8_calibration(tmp_path / "a.pt", faces, out=tmp_path / "b.pt")
    assert "int8" not in load_checkpoint(tmp_path / "a.pt")  # the source is left as it was
    assert load_checkpoint(tmp_path / "b.pt")["int8"] == cal  # weights_only=True reads it
    assert CNNClassifier.from_checkpoint(tmp_path / "b.pt", precision="int8").predict(faces[:3]).shape == (3,)


def test_fer_quantize_cli(tmp_path, faces):
    ckpt = make_checkpoint(net=TINY)
    ckpt["classes"] = sorted(EMOTIONS)
    save_checkpoint(ckpt, tmp_path / "net.pt")
    labels = np.arange(len(faces)) % 7
    rows = [(int(lab), pixel_string(face), "Training") for lab, face in zip(labels, faces)]
    data = write_csv(tmp_path / "fer2013.csv", rows)
    result = fer("quantize", str(tmp_path / "net.pt"), "--data", str(data))
    assert result.exit_code == 0, result.output
    cal = load_checkpoint(tmp_path / "net.pt")["int8"]
    assert cal["n_faces"] == len(faces)
    # the fastest batch size was measured, and inference uses it
    assert len(cal["faces_per_s"]) == 6 and cal["batch_size"] == int(max(cal["faces_per_s"], key=cal["faces_per_s"].get))
    assert CNNClassifier.from_checkpoint(tmp_path / "net.pt", precision="int8").batch_size == cal["batch_size"]
    result = fer("evaluate", str(tmp_path / "net.pt"), "--data", str(data), "--split", "Training", "--precision", "int8", "--json")
    assert result.exit_code == 0, result.output
    assert '"precision": "int8"' in result.output
    assert_user_error(fer("quantize", str(tmp_path / "missing.pt"), "--data", str(data)), "missing.pt")


def test_fit_calibrates_int8_on_its_training_faces(faces, monkeypatch):
    from fer_features.cnn.net import PRESETS

    monkeypatch.setitem(PRESETS, "tiny", dict(TINY))
    labels = np.asarray(sorted(EMOTIONS))[np.arange(200) % 7]
    clf = CNNClassifier(preset="tiny", epochs=1, batch_size=64, device="cpu", precision="int8", validation_fraction=0.1)
    clf.fit(faces[:200], labels)
    assert clf.checkpoint_["int8"]["n_faces"] == 180  # the training part, not the held-out tenth
    assert clf.train_config().precision == "auto"  # int8 is for inference; training runs in float
    assert clf.inference_precision() == "int8" and clf.predict(faces[300:305]).shape == (5,)


def test_int8_of_a_strided_stem_network(faces):
    """A stride-2 first conv replaces the first max pooling; int8 follows it like the others."""
    from fer_features.cnn.net import build_net

    strided = build_net({**NET, "stem_stride": 2, "n_classes": 7}).eval()
    plain = build_net({**NET, "n_classes": 7}).eval()
    pools = lambda net: sum(isinstance(m, torch.nn.MaxPool2d) for m in net.features)  # noqa: E731
    assert pools(strided) == pools(plain) - 1 == 3
    assert strided.features[0].stride == (2, 2)
    xt = to_tensor(faces[:64], 0.45, 0.25)
    with torch.inference_mode():
        assert strided.embed(xt).shape == plain.embed(xt).shape == (64, NET["embedding_dim"])
        qnet = int8_network(strided, calibrate_int8(strided, xt))
        assert qnet(xt).shape == (64, 7)
    with pytest.raises(ValueError, match="stem_stride"):
        build_net({**NET, "stem_stride": 3, "n_classes": 7})


def test_fastest_batch_size_times_every_candidate(calibrated):
    _, ckpt = calibrated
    qnet = int8_network(net_from_checkpoint(ckpt, torch.device("cpu")), ckpt["int8"])
    found = fastest_batch_size(qnet, candidates=(8, 32), n_faces=64, repeats=1)
    assert set(found["faces_per_s"]) == {"8", "32"} and all(v > 0 for v in found["faces_per_s"].values())
    assert found["batch_size"] == int(max(found["faces_per_s"], key=found["faces_per_s"].get))
    with pytest.raises(ValueError, match="positive"):
        fastest_batch_size(qnet, candidates=(0, 8))
