"""fer data inspect: a small synthetic set with planted blank images and duplicates."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_user_error, fer
from PIL import Image

from fer_features.config import EMOTIONS
from fer_features.data.fer2013 import load_fer2013
from fer_features.data.inspection import exact_duplicate_groups, inspect_dataset, near_duplicate_groups, write_plots


@pytest.fixture
def planted(make_fer, tmp_path):
    """A FER2013-layout folder (2 images per class and split) with planted findings:

    * Training_0 copied into test/ as PrivateTest_900 (an exact cross-split duplicate),
    * Training_1 copied within Training as Training_901 (exact, same split, same label),
    * Training_2 plus noise of ±2 grey levels as PublicTest_902 (a near duplicate),
    * two all-black images (Training_903, PrivateTest_904) and one near-blank (PublicTest_905),
    * a corrupt file (skipped, reported as unreadable).
    """
    src = make_fer(per_class=2)
    folder = src.folder
    by_name = dict(zip(src.names, src.X))
    x0, x1, x2 = by_name["train/angry/Training_0.png"], by_name["train/angry/Training_1.png"], by_name["train/disgust/Training_2.png"]
    rng = np.random.default_rng(1)
    near = np.clip(x2.astype(int) + rng.integers(-2, 3, x2.shape), 0, 255).astype(np.uint8)
    flat = np.full((48, 48), 120, np.uint8)
    flat[0, 0] = 124
    plant = {
        "test/angry/PrivateTest_900.png": x0,
        "train/angry/Training_901.png": x1,
        "test/disgust/PublicTest_902.png": near,
        "train/sad/Training_903.png": np.zeros((48, 48), np.uint8),
        "test/sad/PrivateTest_904.png": np.zeros((48, 48), np.uint8),
        "test/happy/PublicTest_905.png": flat,
    }
    for name, img in plant.items():
        Image.fromarray(img).save(folder / name)
    (folder / "train/fear/Training_999.png").write_bytes(b"broken")
    return folder


def test_findings(planted):
    data = load_fer2013(planted, skip_bad=True, cache=False)
    report = inspect_dataset(data)
    assert report["n_images"] == 7 * 6 + 6
    assert report["unreadable"][0][0] == "train/fear/Training_999.png"
    assert report["blank"]["count"] == 3
    assert report["blank"]["by_split"] == {"Training": 1, "PublicTest": 1, "PrivateTest": 1}
    exact = report["exact_duplicates"]
    # Training_0/PrivateTest_900, Training_1/Training_901, and the two black images (Training/PrivateTest)
    assert exact["groups"] == 3 and exact["cross_split_groups"] == 2 and exact["within_split_groups"] == 1
    assert exact["cross_split_pairs"] == {"Training/PrivateTest": 2}
    assert exact["conflicting_label_groups"] == 0
    assert ["test/angry/PrivateTest_900.png", "train/angry/Training_0.png"] in exact["cross_split_examples"]
    near = report["near_duplicates"]
    assert near["groups"] == 1 and near["cross_split_pairs"] == {"Training/PublicTest": 1}
    assert sorted(near["examples"][0]) == ["test/disgust/PublicTest_902.png", "train/disgust/Training_2.png"]


def test_groups_directly():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (50, 48, 48), dtype=np.uint8)
    X[10] = X[3]
    X[20] = np.clip(X[5].astype(int) + 3, 0, 255)  # 3 grey levels brighter (less where clipped)
    X[30] = X[7].copy()
    X[30, :8] = 255 - X[30, :8]  # one band changed a lot: not a near duplicate
    assert exact_duplicate_groups(X) == [[3, 10]]
    assert [sorted(g) for g in near_duplicate_groups(X)] == [[5, 20]]
    assert [sorted(g) for g in near_duplicate_groups(X, exclude_exact=False)] == [[3, 10], [5, 20]]


def test_plots(planted, tmp_path):
    data = load_fer2013(planted, skip_bad=True, cache=False)
    plots = write_plots(data, tmp_path / "plots", per_class=3)
    for name in ("class_histogram", "sample_grid", "mean_faces"):
        with Image.open(plots[name]) as im:
            assert im.format == "PNG" and im.size[0] > 300


def test_cli_inspect(planted, tmp_path):
    out = tmp_path / "plots"
    result = fer("data", "inspect", planted, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["blank"]["count"] == 3 and report["exact_duplicates"]["groups"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["class_histogram.png", "mean_faces.png", "sample_grid.png"]
    assert set(report["classes"]) == set(EMOTIONS)
    result = fer("data", "inspect", planted, "--no-near")
    assert result.exit_code == 0, result.output
    assert "near-blank images (pixel std < 2): 3" in result.stdout
    assert "exact duplicates: 3 groups" in result.stdout and "near duplicates" not in result.stdout


def test_cli_inspect_bad_input(tmp_path):
    assert_user_error(fer("data", "inspect", tmp_path / "nothing"), "no such file")
    (tmp_path / "x.txt").write_text("hello")
    assert_user_error(fer("data", "inspect", tmp_path / "x.txt"), "not a FER2013 source")
    assert_user_error(fer("data", "inspect", tmp_path, "--format", "ferplus"), "fer2013new.csv")
