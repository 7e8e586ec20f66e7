"""FERPlus: small generated pairs of fer2013.csv and fer2013new.csv, both label modes, 7 and 8 classes."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from conftest import assert_user_error, fer, pixel_string, write_csv

from fer_features.config import EMOTIONS, EMOTIONS8
from fer_features.data.fer2013 import DataError, load_fer2013
from fer_features.data.ferplus import (
    FERPLUS_COLUMNS,
    ferplus_labels,
    ferplus_soft_targets,
    find_ferplus_pair,
    load_ferplus,
)

# votes in FERPLUS_COLUMNS order: neutral happiness surprise sadness anger disgust fear contempt unknown NF
ROWS = [
    ("Training", "fer0.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),  # happy, unanimous
    ("Training", "fer1.png", [6, 0, 0, 4, 0, 0, 0, 0, 0, 0]),  # neutral 6 of 10: majority
    ("Training", "fer2.png", [5, 0, 0, 5, 0, 0, 0, 0, 0, 0]),  # tie: no strict majority
    ("Training", "fer3.png", [0, 0, 0, 0, 0, 0, 0, 0, 7, 3]),  # unknown wins
    ("Training", "fer4.png", [2, 0, 0, 0, 0, 0, 0, 8, 0, 0]),  # contempt majority
    ("PublicTest", "fer5.png", [0, 0, 9, 0, 0, 0, 1, 0, 0, 0]),  # surprise; fear's single vote is noise
    ("PublicTest", "", [0, 0, 0, 0, 10, 0, 0, 0, 0, 0]),  # removed by FERPlus (no image name)
    ("PrivateTest", "fer7.png", [0, 0, 0, 0, 3, 4, 3, 0, 0, 0]),  # disgust 4 of 10: no majority
    ("PrivateTest", "fer8.png", [0, 0, 0, 0, 0, 0, 0, 0, 2, 8]),  # not a face
]


def write_pair(folder, rows=ROWS, usages=None, extra_rows=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (len(rows) + extra_rows, 48, 48), dtype=np.uint8)
    usages = usages or [r[0] for r in rows] + ["Training"] * extra_rows
    write_csv(folder / "fer2013.csv", [(0, pixel_string(img), u) for img, u in zip(images, usages)])
    with open(folder / "fer2013new.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Usage", "Image name", *FERPLUS_COLUMNS])
        for usage, name, votes in rows:
            w.writerow([usage, name, *votes])
    return folder / "fer2013new.csv", images


def test_majority_7_classes(tmp_path):
    path, images = write_pair(tmp_path / "d")
    data = load_ferplus(path, label_mode="majority", classes=7, cache=False)
    assert data.classes == EMOTIONS and data.soft is None
    assert data.names.tolist() == ["line 2", "line 3", "line 7"]
    assert data.labels.tolist() == ["happy", "neutral", "surprise"]
    assert data.usage.tolist() == ["Training", "Training", "PublicTest"]
    np.testing.assert_array_equal(data.X, images[[0, 1, 5]])
    assert data.X.dtype == np.uint8 and data.y.dtype == np.int64


def test_majority_8_classes_keeps_contempt(tmp_path):
    path, images = write_pair(tmp_path / "d")
    data = load_ferplus(tmp_path / "d", classes=8, cache=False)  # the folder works too
    assert data.classes == EMOTIONS8
    assert data.labels.tolist() == ["happy", "neutral", "contempt", "surprise"]
    assert data.y.tolist() == [3, 6, 7, 5]
    assert data.counts()["Training"]["contempt"] == 1


@pytest.mark.parametrize("classes", [7, 8])
def test_probability_mode(tmp_path, classes):
    path, _ = write_pair(tmp_path / "d")
    data = load_ferplus(path, label_mode="probability", classes=classes, cache=False)
    assert data.soft.shape == (len(data), classes) and data.soft.dtype == np.float32
    np.testing.assert_allclose(data.soft.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y, data.soft.argmax(axis=1))
    by_line = dict(zip(data.names.tolist(), data.soft))
    # the 5/5 tie and the 3/4/3 split keep their distributions; unknown, NF and the removed row
    # go, and so does the contempt-majority face when contempt is not a class
    expected = ["line 2", "line 3", "line 4", "line 7", "line 9"] + (["line 6"] if classes == 8 else [])
    assert sorted(by_line) == sorted(expected)
    np.testing.assert_allclose(by_line["line 4"][[EMOTIONS.index("neutral"), EMOTIONS.index("sad")]], [0.5, 0.5])
    np.testing.assert_allclose(by_line["line 9"][[0, 1, 2]], [0.3, 0.4, 0.3], rtol=1e-6)
    assert by_line["line 7"][EMOTIONS.index("fear")] == 0  # the single vote removed
    if classes == 8:
        np.testing.assert_allclose(by_line["line 6"][[6, 7]], [0.2, 0.8], rtol=1e-6)
    # the subset keeps the soft labels in step
    sub = data.subset(np.array([1, 0]))
    np.testing.assert_array_equal(sub.soft, data.soft[[1, 0]])


def test_ferplus_labels_directly():
    soft, keep = ferplus_labels([[0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [3, 3, 0, 0, 0, 0, 0, 0, 0, 4]])
    assert keep.tolist() == [False, False]
    soft, keep = ferplus_labels([[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]], label_mode="probability")
    assert keep.tolist() == [False]  # every vote single: nothing left


def test_mismatched_pair_is_an_error(tmp_path):
    path, _ = write_pair(tmp_path / "rows", extra_rows=2)
    with pytest.raises(DataError, match="rows must correspond"):
        load_ferplus(path, cache=False)
    usages = ["PrivateTest"] + [r[0] for r in ROWS[1:]]
    path, _ = write_pair(tmp_path / "usage", usages=usages)
    with pytest.raises(DataError, match="line 2: Usage 'Training'"):
        load_ferplus(path, cache=False)


def test_bad_arguments(tmp_path):
    path, _ = write_pair(tmp_path / "d")
    with pytest.raises(ValueError, match="label mode"):
        load_ferplus(path, label_mode="soft")
    with pytest.raises(ValueError, match="7 or 8"):
        load_ferplus(path, classes=6)
    (tmp_path / "d" / "fer2013.csv").unlink()
    with pytest.raises(FileNotFoundError, match="put fer2013.csv or fer2013.csv.gz in"):
        load_ferplus(path)


def test_detection_of_the_pair(tmp_path):
    path, _ = write_pair(tmp_path / "d")
    assert find_ferplus_pair(path) == (path, path.with_name("fer2013.csv"))
    assert find_ferplus_pair(tmp_path / "d") == (path, path.with_name("fer2013.csv"))
    assert find_ferplus_pair(path.with_name("fer2013.csv")) is None  # FER2013's own CSV stays FER2013


def test_pixels_from_a_gzipped_challenge_csv(tmp_path):
    import pandas as pd

    from fer_features.data.sources import detect_format, load_dataset

    path, images = write_pair(tmp_path / "d")
    plain = load_ferplus(path, cache=False)
    csv_path = path.with_name("fer2013.csv")
    pd.read_csv(csv_path, dtype=str).to_csv(path.with_name("fer2013.csv.gz"), index=False)
    csv_path.unlink()
    assert find_ferplus_pair(path) == (path, path.with_name("fer2013.csv.gz"))
    assert detect_format(path) == "ferplus"
    packed = load_dataset(path, cache=False)
    np.testing.assert_array_equal(packed.X, plain.X)
    assert packed.labels.tolist() == plain.labels.tolist()


def test_missing_pixel_file_is_one_clear_line_in_the_cli(tmp_path):

    path, _ = write_pair(tmp_path / "d")
    path.with_name("fer2013.csv").unlink()
    result = fer("train", "--data", str(path), "--features", "hog", "--out", str(tmp_path / "m.joblib"))
    assert_user_error(result, "fer2013new.csv", "put fer2013.csv or fer2013.csv.gz in")
    assert "missing column" not in result.output


def test_soft_targets_mix_fer2013_labels_with_the_votes(tmp_path):
    path, _ = write_pair(tmp_path / "d")
    data = load_fer2013(path.parent / "fer2013.csv", cache=False)  # every face labelled angry (0)
    targets, has_votes = ferplus_soft_targets(data, path, weight=0.5)
    assert targets.shape == (len(ROWS), 7) and targets.dtype == np.float32
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)
    # unanimous happy, the neutral/sad tie, surprise and the 3/4/3 split have a distribution;
    # unknown, contempt (not a class of 7), the removed row and not-a-face keep the one-hot label
    assert has_votes.tolist() == [True, True, True, False, False, True, False, True, False]
    angry, happy, neutral, sad = (EMOTIONS.index(c) for c in ("angry", "happy", "neutral", "sad"))
    np.testing.assert_allclose(targets[0][[angry, happy]], [0.5, 0.5])
    np.testing.assert_allclose(targets[2][[angry, neutral, sad]], [0.5, 0.25, 0.25])
    np.testing.assert_array_equal(targets[~has_votes], np.eye(7, dtype=np.float32)[[0] * 4])
    # the anger votes of line 9 add to its one-hot anger
    np.testing.assert_allclose(targets[7][[0, 1, 2]], [0.5 + 0.15, 0.2, 0.15], rtol=1e-6)
    # weights 0 and 1: FER2013's labels, FERPlus's distributions
    np.testing.assert_array_equal(ferplus_soft_targets(data, path, weight=0.0)[0], np.eye(7, dtype=np.float32)[data.y])
    votes_only = ferplus_soft_targets(data, path, weight=1.0)[0]
    np.testing.assert_allclose(votes_only[has_votes], load_ferplus(path, label_mode="probability", cache=False).soft)


def test_soft_targets_of_a_subset_follow_its_rows(tmp_path):
    path, _ = write_pair(tmp_path / "d")
    data = load_fer2013(path.parent / "fer2013.csv", cache=False)
    whole, _ = ferplus_soft_targets(data, path)
    order = np.array([7, 0, 5])
    sub = data.subset(order)
    np.testing.assert_array_equal(ferplus_soft_targets(sub, path)[0], whole[order])


def test_soft_targets_refuse_what_does_not_pair(tmp_path):
    path, _ = write_pair(tmp_path / "d")
    data = load_fer2013(path.parent / "fer2013.csv", cache=False)
    with pytest.raises(ValueError, match="share in"):
        ferplus_soft_targets(data, path, weight=1.5)
    with pytest.raises(FileNotFoundError, match="FERPlus vote file"):
        ferplus_soft_targets(data, tmp_path / "missing.csv")
    other, _ = write_pair(tmp_path / "e", usages=["PublicTest"] * len(ROWS))
    with pytest.raises(DataError, match="are these files a pair"):
        ferplus_soft_targets(load_fer2013(other.parent / "fer2013.csv", cache=False), path)
    longer, _ = write_pair(tmp_path / "f", extra_rows=3)
    with pytest.raises(DataError, match="correspond one to one"):
        ferplus_soft_targets(load_fer2013(longer.parent / "fer2013.csv", cache=False), path)
    renamed = data.subset(np.arange(len(data)))
    renamed.names[:] = "face.png"
    with pytest.raises(DataError, match="named by line"):
        ferplus_soft_targets(renamed, path)
