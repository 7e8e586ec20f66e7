"""Folders of labelled photos: skimage photos with and without faces, and FER2013 crops made photo-sized."""

from __future__ import annotations

import csv
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from fer_features.config import EMOTIONS
from fer_features.data.fer2013 import DataError
from fer_features.data.photos import (
    PhotoFolderDataset,
    crop_as_photo,
    load_photo_folder,
    normalise_class,
    scan_photo_folder,
    stratified_split,
)
from fer_features.data.sources import detect_format, load_dataset


@pytest.fixture(scope="module")
def skimage_folder(tmp_path_factory):
    """happy/astronaut.png (one face), Sadness/astronaut_mirror.jpg (one face), Surprised/brick.png
    and surprised/coffee.png (no face), anger/two_astronauts.png (two faces), neutral/broken.jpg."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    astro = data.astronaut()
    files = {
        "happy/astronaut.png": astro,
        "Sadness/astronaut_mirror.jpg": astro[:, ::-1],
        "Surprised/brick.png": data.brick(),
        "Surprised/coffee.png": data.coffee(),
        "anger/two_astronauts.png": np.concatenate([astro, astro[:, ::-1]], axis=1),
    }
    for name, img in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / name)
    (root / "neutral").mkdir()
    (root / "neutral/broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_class_names_are_normalised():
    assert [normalise_class(n) for n in ("Anger", "happiness", "SAD", "surprised", "Neutral", "fearful", "x")] == [
        "angry", "happy", "sad", "surprise", "neutral", "fear", None,
    ]


def test_skimage_folder_end_to_end(skimage_folder, tmp_path):
    data = load_photo_folder(skimage_folder, n_jobs=1, cache_dir=tmp_path)
    assert isinstance(data, PhotoFolderDataset)
    assert data.names.tolist() == ["Sadness/astronaut_mirror.jpg", "happy/astronaut.png"]
    assert data.labels.tolist() == ["sad", "happy"]
    assert data.X.shape == (2, 48, 48) and data.X.dtype == np.uint8
    assert data.n_photos == 6
    problems = dict(data.problems)
    assert problems["Surprised/brick.png"] == "no face"
    assert problems["Surprised/coffee.png"] == "no face"
    assert problems["anger/two_astronauts.png"] == "2 faces"
    assert problems["neutral/broken.jpg"].startswith("unreadable")
    with open(data.problems_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["path"] for r in rows} == set(problems)
    assert "no face 2" in data.summary() and "several faces 1" in data.summary() and "unreadable 1" in data.summary()
    # no split folders: a split is made and written; one image per class stays in Training
    assert data.usage.tolist() == ["Training", "Training"]
    with open(data.split_csv, newline="") as fh:
        assert [r["path"] for r in csv.DictReader(fh)] == data.names.tolist()
    # the second load comes from the cache; the same crops
    start = time.perf_counter()
    again = load_photo_folder(skimage_folder, n_jobs=1, cache_dir=tmp_path)
    assert time.perf_counter() - start < 0.5
    np.testing.assert_array_equal(again.X, data.X)
    assert again.problems == data.problems
    # the detected face is the astronaut's, aligned: the mirror photo gives (close to) the mirror crop
    diff = np.abs(data.X[0].astype(int) - data.X[1][:, ::-1].astype(int)).mean()
    assert diff < 25, diff


def test_detected_by_auto_format(skimage_folder, tmp_path):
    assert detect_format(skimage_folder) == "photos"
    data = load_dataset(skimage_folder, n_jobs=1, cache_dir=tmp_path)
    assert len(data) == 2


def test_unknown_class_folders_are_listed(tmp_path):
    for name in ("happy", "bored", "sleepy"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (100, 100)).save(tmp_path / name / "a.png")
    with pytest.raises(DataError, match="unknown emotion folder\\(s\\) 'bored', 'sleepy'"):
        scan_photo_folder(tmp_path)


def test_mixed_layout_and_empty_folder_are_errors(tmp_path):
    with pytest.raises(DataError, match="no image files"):
        scan_photo_folder(tmp_path)
    (tmp_path / "happy").mkdir()
    (tmp_path / "train/sad").mkdir(parents=True)
    Image.new("RGB", (100, 100)).save(tmp_path / "happy/a.png")
    Image.new("RGB", (100, 100)).save(tmp_path / "train/sad/b.png")
    with pytest.raises(DataError, match="expected <emotion>/<photo>"):
        scan_photo_folder(tmp_path)


def test_stratified_split_is_seeded_and_stratified():
    classes = np.repeat(["happy", "sad", "fear"], [50, 20, 2])
    a, b = stratified_split(classes, seed=3), stratified_split(classes, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, stratified_split(classes, seed=4))
    assert [(a[classes == "happy"] == u).sum() for u in ("Training", "PublicTest", "PrivateTest")] == [40, 5, 5]
    assert [(a[classes == "sad"] == u).sum() for u in ("Training", "PublicTest", "PrivateTest")] == [16, 2, 2]
    assert (a[classes == "fear"] == "Training").all()


def test_fer2013_crops_as_photos(real_zip, tmp_path):
    """FER2013 crops upscaled x4 and padded to 320x320, in a split layout: faces found and aligned."""
    root = tmp_path / "photos"
    with zipfile.ZipFile(real_zip) as zf:
        names = sorted(n for n in zf.namelist() if "PrivateTest_" in n and n.split("/")[1] in ("happy", "surprise"))
        for i, n in enumerate(names[:12]):
            crop = np.asarray(Image.open(zf.open(n)).convert("L"))
            split = "train" if i % 3 else "test"
            target = root / split / n.split("/")[1] / f"{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(crop_as_photo(crop)).save(target)
    assert detect_format(root) == "photos"
    data = load_dataset(root, n_jobs=1, cache_dir=tmp_path / "cache")
    assert data.n_photos == 12
    assert len(data) >= 6, data.summary()  # most of them (the benchmark measures the rate on 500)
    assert set(data.usage.tolist()) <= {"Training", "PrivateTest"}
    assert set(data.labels.tolist()) <= {"happy", "surprise"}
    assert data.classes == EMOTIONS
