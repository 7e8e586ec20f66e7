"""The pretrained-embedding extractors: VGG16 from a local weights file, dlib's ResNet descriptor."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fer_features.features import make_features  # noqa: E402
from fer_features.features.dlib_resnet import DlibResNetEmbedding  # noqa: E402
from fer_features.features.vgg16 import VGG16Features, vgg16_features  # noqa: E402


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """Random VGG16 weights in torchvision's state-dict layout (features.* and classifier.*)."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(4096, 25088)[:2, :2]  # ignored by the extractor
    path = tmp_path_factory.mktemp("vgg") / "vgg16-test.pth"
    torch.save(state, path)
    return path, state


@pytest.fixture(scope="module")
def faces():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(5, 48, 48), dtype=np.uint8)


def test_vgg16_matches_a_direct_forward_pass(vgg_weights, faces):
    path, state = vgg_weights
    out = VGG16Features(weights=path, device="cpu").fit(faces).transform(faces)
    assert out.shape == (5, 512) and out.dtype == np.float32
    # the same computation written out: resize, three channels, ImageNet normalisation, conv stack
    net = vgg16_features()
    net.load_state_dict({k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")})
    x = torch.from_numpy(faces).float().div(255).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = net.eval()((x - mean) / std).flatten(1).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_vgg16_dims_follow_input_size(vgg_weights, faces):
    path, _ = vgg_weights
    f = VGG16Features(weights=path, input_size=96, device="cpu").fit(faces)
    assert f.transform(faces).shape == (5, 512 * 9)
    assert f.get_feature_names_out()[0] == "vgg16_0"


def test_vgg16_batching_and_pickle(vgg_weights, faces):
    path, _ = vgg_weights
    a = VGG16Features(weights=path, batch_size=1, device="cpu").fit(faces)
    b = VGG16Features(weights=path, batch_size=64, device="cpu").fit(faces)
    np.testing.assert_allclose(a.transform(faces), b.transform(faces), rtol=1e-5, atol=1e-6)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.transform(faces), a.transform(faces))


def test_vgg16_without_weights_says_how_to_get_them(faces, tmp_path):
    with pytest.raises(FileNotFoundError, match="--weights"):
        VGG16Features().fit(faces)
    with pytest.raises(FileNotFoundError, match="no such file"):
        VGG16Features(weights=tmp_path / "missing.pth").fit(faces)


def test_vgg16_rejects_other_weights(tmp_path, faces):
    path = tmp_path / "other.pth"
    torch.save({"features.0.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="not VGG16 weights"):
        VGG16Features(weights=path).fit(faces)
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable"):
        VGG16Features(weights=tmp_path / "junk.pth").fit(faces)


def test_vgg16_in_the_registry(vgg_weights, faces):
    path, _ = vgg_weights
    union = make_features("hog+vgg16", params={"vgg16": {"weights": str(path)}})
    assert union.fit_transform(faces).shape == (5, 1764 + 512)


def test_dlib_resnet_descriptor(real_faces, tmp_path):
    faces = real_faces[:6]
    f = DlibResNetEmbedding(cache_dir=str(tmp_path / "cache")).fit(faces)
    out = f.transform(faces)
    assert out.shape == (6, 128) and out.dtype == np.float32
    # dlib's descriptors are unit-free but non-degenerate: different faces, different vectors
    assert np.all(np.linalg.norm(out, axis=1) > 0.1)
    assert np.linalg.norm(out[0] - out[1]) > 1e-3
    # the second call is served from the cache, with the same numbers
    assert any((tmp_path / "cache").rglob("*.pkl")) or any((tmp_path / "cache").rglob("output*"))
    np.testing.assert_array_equal(f.transform(faces), out)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(f)).transform(faces), out)
