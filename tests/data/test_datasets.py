"""fer_features.data.fer2013.load_fer2013 on small sources built here, and on the real zip."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
import pytest
from conftest import pixel_string, write_csv

from fer_features.config import EMOTIONS, USAGES
from fer_features.data import fer2013 as datasets
from fer_features.data.fer2013 import DataError, FERDataset, load_fer2013


def png(image) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def assert_same_data(a: FERDataset, b: FERDataset):
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.usage, b.usage)
    assert a.fingerprint == b.fingerprint


# --------------------------------------------------------------------------- three containers


def test_zip_folder_and_csv_give_the_same_data(make_fer):
    src = make_fer(per_class=2)
    from_zip = load_fer2013(src.zip, cache=False)
    from_folder = load_fer2013(src.folder, cache=False)
    from_csv = load_fer2013(src.csv, cache=False)

    assert from_zip.X.dtype == np.uint8 and from_zip.X.shape == (len(src.y), 48, 48)
    assert from_zip.y.dtype == np.int64
    np.testing.assert_array_equal(from_zip.X, src.X)
    np.testing.assert_array_equal(from_zip.y, src.y)
    np.testing.assert_array_equal(from_zip.usage, src.usage)
    assert list(from_zip.names) == src.names
    assert from_zip.source == str(src.zip) and from_zip.skipped == []
    assert_same_data(from_folder, from_zip)
    assert_same_data(from_csv, from_zip)
    assert list(from_csv.names[:2]) == ["line 2", "line 3"]
    assert len(from_zip.fingerprint) == 64


def test_parent_of_extracted_folder_is_accepted(make_fer):
    src = make_fer(per_class=1)
    # the folder that holds fer2013/ with train/ and test/ inside
    assert_same_data(load_fer2013(src.folder.parent / "fer2013", cache=False), load_fer2013(src.folder.parent, cache=False))


def test_fingerprint_changes_with_the_data(make_fer):
    a = load_fer2013(make_fer(per_class=1, seed=0).zip, cache=False)
    b = load_fer2013(make_fer(per_class=1, seed=1).zip, cache=False)
    assert a.fingerprint != b.fingerprint


def test_jpeg_members_are_decoded(tmp_path):
    from PIL import Image

    image = np.full((48, 48), 77, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=95)
    path = tmp_path / "jpg.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/sad/Training_1.jpg", buf.getvalue())
        zf.writestr("test/sad/PrivateTest_2.jpg", buf.getvalue())
        zf.writestr("README.txt", b"not an image, ignored")
    data = load_fer2013(path, cache=False)
    assert len(data) == 2 and list(data.usage) == ["PrivateTest", "Training"]
    assert (data.labels == "sad").all()
    assert np.abs(data.X.astype(int) - 77).max() <= 2  # a flat JPEG round-trips to within rounding


def test_usage_from_folder_when_file_has_no_prefix(tmp_path):
    path = tmp_path / "noprefix.zip"
    img = png(np.zeros((48, 48), np.uint8))
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train/fear/im1.png", img)
        zf.writestr("test/fear/im2.png", img)
        zf.writestr("val/fear/im3.png", img)
    data = load_fer2013(path, cache=False)
    assert dict(zip(data.names, data.usage)) == {
        "test/fear/im2.png": "PrivateTest",
        "train/fear/im1.png": "Training",
        "val/fear/im3.png": "PublicTest",
    }


# --------------------------------------------------------------------------- FERDataset


def test_split_counts_subset(make_fer):
    src = make_fer(per_class=2)
    data = load_fer2013(src.zip, cache=False)
    counts = data.counts()
    assert set(counts) == set(USAGES)
    for usage in USAGES:
        assert counts[usage] == {e: 2 for e in EMOTIONS}
        X, labels = data.split(usage)
        mask = src.usage == usage
        np.testing.assert_array_equal(X, src.X[mask])
        np.testing.assert_array_equal(labels, np.asarray(EMOTIONS)[src.y[mask]])
    with pytest.raises(ValueError, match="Training"):
        data.split("Validation")

    happy = data.subset(data.y == EMOTIONS.index("happy"))
    assert len(happy) == 6 and (happy.labels == "happy").all()
    assert happy.fingerprint != data.fingerprint
    idx = np.array([3, 0, 5])
    sub = data.subset(idx)
    np.testing.assert_array_equal(sub.X, data.X[idx])
    np.testing.assert_array_equal(sub.names, data.names[idx])
    # a subset's fingerprint is that of its own data
    assert sub.fingerprint == datasets._fingerprint(data.X[idx], data.y[idx], data.usage[idx])


# --------------------------------------------------------------------------- cache


def test_cache_round_trip_and_invalidation(make_fer, tmp_path, monkeypatch):
    src = make_fer(per_class=1)
    cache_dir = tmp_path / "cache"
    first = load_fer2013(src.zip, cache_dir=cache_dir)
    files = list(cache_dir.glob("fer2013-*.npz"))
    assert len(files) == 1

    decoded = []
    real_decode = datasets._decode_image
    monkeypatch.setattr(datasets, "_decode_image", lambda data: decoded.append(1) or real_decode(data))

    second = load_fer2013(src.zip, cache_dir=cache_dir)
    assert decoded == []  # read from the .npz, nothing decoded
    assert_same_data(second, first)
    np.testing.assert_array_equal(second.names, first.names)
    assert second.source == str(src.zip)

    # a source with a new modification time is decoded again
    st = src.zip.stat()
    os.utime(src.zip, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    third = load_fer2013(src.zip, cache_dir=cache_dir)
    assert len(decoded) == len(first)
    assert_same_data(third, first)

    # a changed source (new size) gives the new data, not the cached
    decoded.clear()
    with zipfile.ZipFile(src.zip, "a") as zf:
        zf.writestr("train/happy/Training_999.png", png(np.full((48, 48), 9, np.uint8)))
    fourth = load_fer2013(src.zip, cache_dir=cache_dir)
    assert len(fourth) == len(first) + 1 and len(decoded) == len(fourth)


def test_cache_dir_from_environment(make_fer, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_FEATURES_CACHE", str(tmp_path / "envcache"))
    assert datasets.default_cache_dir() == tmp_path / "envcache"
    load_fer2013(make_fer(per_class=1).csv)
    assert len(list((tmp_path / "envcache").glob("fer2013-*.npz"))) == 1


def test_folder_cache_sees_a_changed_file(make_fer, tmp_path):
    src = make_fer(per_class=1)
    cache_dir = tmp_path / "cache"
    first = load_fer2013(src.folder, cache_dir=cache_dir)
    member = src.folder / src.names[0]
    member.write_bytes(png(np.full((48, 48), 200, np.uint8)))
    second = load_fer2013(src.folder, cache_dir=cache_dir)
    assert (second.X[0] == 200).all() and second.fingerprint != first.fingerprint


def test_broken_cache_is_rebuilt(make_fer, tmp_path):
    src = make_fer(per_class=1)
    cache_dir = tmp_path / "cache"
    first = load_fer2013(src.zip, cache_dir=cache_dir)
    (cache_file,) = cache_dir.glob("*.npz")
    cache_file.write_bytes(b"garbage")
    assert_same_data(load_fer2013(src.zip, cache_dir=cache_dir), first)


def test_cache_false_writes_nothing(make_fer, tmp_path):
    load_fer2013(make_fer(per_class=1).zip, cache=False, cache_dir=tmp_path / "c")
    assert not (tmp_path / "c").exists()


# --------------------------------------------------------------------------- bad sources


GOOD = np.zeros((48, 48), np.uint8)


@pytest.mark.parametrize(
    "member, data, match",
    [
        ("train/happy/Training_bad.png", b"\x89PNG\r\n\x1a\n garbage", "not a readable image"),
        ("train/happy/Training_big.png", png(np.zeros((50, 48), np.uint8)), "wrong size.*48x50"),
    ],
    ids=["corrupt", "wrong-size"],
)
def test_bad_image_names_member(make_fer, member, data, match):
    src = make_fer(per_class=1, extra={member: data})
    for source in (src.zip, src.folder):
        with pytest.raises(DataError, match=match) as info:
            load_fer2013(source, cache=False)
        assert member in str(info.value)
        skipped = load_fer2013(source, cache=False, skip_bad=True)
        assert len(skipped) == len(src.y)
        assert [name for name, _ in skipped.skipped] == [member]
        np.testing.assert_array_equal(skipped.X, src.X)


def test_skipped_survive_the_cache(make_fer, tmp_path):
    src = make_fer(per_class=1, extra={"test/sad/PublicTest_x.png": b"junk"})
    first = load_fer2013(src.zip, skip_bad=True, cache_dir=tmp_path)
    second = load_fer2013(src.zip, skip_bad=True, cache_dir=tmp_path)
    assert second.skipped == first.skipped == [("test/sad/PublicTest_x.png", first.skipped[0][1])]


def test_unknown_emotion_folder(make_fer):
    src = make_fer(per_class=1, extra={"train/joy/Training_5.png": png(GOOD)})
    for skip_bad in (False, True):  # a layout error either way
        with pytest.raises(DataError, match="train/joy/Training_5.png.*unknown emotion folder 'joy'"):
            load_fer2013(src.zip, cache=False, skip_bad=skip_bad)


def test_member_outside_layout(tmp_path):
    path = tmp_path / "flat.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Training_1.png", png(GOOD))
    with pytest.raises(DataError, match="Training_1.png.*<split>/<emotion>/<file>"):
        load_fer2013(path, cache=False)


def test_not_a_fer_source(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(DataError, match="notes.txt.*not a FER2013 source"):
        load_fer2013(path, cache=False)


def test_empty_zip(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("README.md", "nothing here")
    with pytest.raises(DataError, match="no images"):
        load_fer2013(path, cache=False)


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.zip"):
        load_fer2013(tmp_path / "nothing.zip")


PIX = pixel_string(np.arange(48 * 48) % 256)


def test_csv_missing_column(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text(f"emotion,pixels\n0,{PIX}\n")
    with pytest.raises(DataError, match=r"cols.csv.*missing column\(s\) Usage"):
        load_fer2013(path, cache=False)
    with pytest.raises(DataError, match="missing column"):  # not skippable
        load_fer2013(path, cache=False, skip_bad=True)


@pytest.mark.parametrize(
    "row, match",
    [
        ((0, " ".join(["1"] * 100), "Training"), "2304 space-separated integers, got 100 values"),
        ((0, PIX.replace("7", "x", 1), "Training"), "non-numeric"),
        ((0, PIX.replace("255", "256", 1), "Training"), "0..255"),
        ((0, "", "Training"), "non-numeric|0 values"),
        ((0, PIX, "Validation"), "Usage 'Validation'"),
        ((7, PIX, "Training"), "emotion 7"),
        ((2.5, PIX, "Training"), "emotion 2.5"),
    ],
    ids=["short", "non-numeric", "out-of-range", "empty", "bad-usage", "label-7", "label-float"],
)
def test_csv_bad_row_names_line(tmp_path, row, match):
    path = write_csv(tmp_path / "rows.csv", [(3, PIX, "Training"), (1, PIX, "PublicTest"), row, (4, PIX, "PrivateTest")])
    with pytest.raises(DataError, match=match) as info:
        load_fer2013(path, cache=False)
    assert "rows.csv: line 4:" in str(info.value)  # header is line 1, the bad row the 3rd data row
    data = load_fer2013(path, cache=False, skip_bad=True)
    assert len(data) == 3 and [s[0] for s in data.skipped] == ["line 4"]
    assert list(data.y) == [3, 1, 4]


def test_csv_non_numeric_label_blames_its_own_line(tmp_path):
    # one non-numeric label makes pandas read the whole column as text; only that row is bad
    path = write_csv(tmp_path / "labels.csv", [(3, PIX, "Training"), ("x", PIX, "PublicTest"), (4, PIX, "PrivateTest")])
    with pytest.raises(DataError, match="line 3: emotion 'x'"):
        load_fer2013(path, cache=False)
    data = load_fer2013(path, cache=False, skip_bad=True)
    assert list(data.y) == [3, 4] and [s[0] for s in data.skipped] == ["line 3"]


def test_csv_pixels_decoded_row_major(tmp_path):
    image = np.random.default_rng(3).integers(0, 256, (48, 48), dtype=np.uint8)
    path = write_csv(tmp_path / "one.csv", [(5, pixel_string(image), "PrivateTest")])
    data = load_fer2013(path, cache=False)
    np.testing.assert_array_equal(data.X[0], image)
    assert list(data.labels) == ["surprise"] and list(data.usage) == ["PrivateTest"]


# --------------------------------------------------------------------------- the real zip


def test_real_zip(real_data, real_zip):
    data = real_data
    assert len(data) == 35_887
    assert data.X.dtype == np.uint8 and data.X.shape == (35_887, 48, 48)
    assert data.y.dtype == np.int64 and set(np.unique(data.y)) == set(range(7))
    sizes = {u: int((data.usage == u).sum()) for u in USAGES}
    assert sizes == {"Training": 28_709, "PublicTest": 3_589, "PrivateTest": 3_589}
    # per-class totals documented in ../shared/data/README.md
    totals = {e: sum(data.counts()[u][e] for u in USAGES) for e in EMOTIONS}
    assert totals == {"angry": 4953, "disgust": 547, "fear": 5121, "happy": 8989, "sad": 6077, "surprise": 4002, "neutral": 6198}
    assert data.skipped == []
    # names follow the layout: usage prefix matches the usage
    for name, usage in zip(data.names[::997], data.usage[::997]):
        assert name.split("/")[-1].startswith(usage + "_")
    # the (session-cached) second load is the same data
    again = load_fer2013(real_zip)
    assert again.fingerprint == data.fingerprint


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz", ".csv.zip"])
def test_compressed_csv_is_read_by_its_suffix(make_fer, tmp_path, suffix):
    import pandas as pd

    src = make_fer(per_class=1)
    packed = tmp_path / f"fer2013{suffix}"
    pd.read_csv(src.csv, dtype=str).to_csv(packed, index=False)  # pandas compresses by the suffix
    assert packed.read_bytes()[:4] != src.csv.read_bytes()[:4]  # really compressed
    from fer_features.data.sources import load_dataset

    assert_same_data(load_dataset(packed, cache=False), load_fer2013(src.csv, cache=False))


def test_corrupt_compressed_csv_names_the_file(tmp_path):
    bad = tmp_path / "fer2013.csv.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip data")
    with pytest.raises(DataError, match=r"fer2013.csv.gz: not a readable CSV"):
        load_fer2013(bad, cache=False)
