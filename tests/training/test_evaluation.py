"""``fer evaluate`` and :func:`fer_features.training.evaluation.evaluate_split` on folders of photos and FER2013:
every photo scored (no face: wrong), balanced accuracy, faces found, the PNG only with --plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import assert_user_error, fer  # noqa: E402
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, f1_score

from fer_features.data.photos import load_photo_folder, normalise_class
from fer_features.training.evaluation import NO_FACE, default_split, evaluate, evaluate_split, format_report

# the tests' own sklearn calls see the "no face" prediction, a class that is never true
pytestmark = pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")


def _photos():
    """Photo name → image: three with one face (the astronaut, mirrored, smaller) and two without."""
    from skimage import data

    astro = data.astronaut()
    small = np.asarray(Image.fromarray(astro).resize((360, 360), Image.BICUBIC))
    return {
        "face": astro,
        "mirror": astro[:, ::-1].copy(),
        "small": small,
        "grey": np.full((300, 300, 3), 128, np.uint8),
        "brick": data.brick(),
    }


def write_folder(root, layout: dict[str, str]):
    """``layout``: relative path → photo name of :func:`_photos`; returns ``root``."""
    photos = _photos()
    for rel, name in layout.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photos[name]).save(root / rel)
    return root


#: No split folders: happy has two faces and a brick wall, sad one face, angry only a grey square.
FLAT = {
    "happy/astronaut.png": "face",
    "happy/astronaut_small.png": "small",
    "happy/brick.png": "brick",
    "sad/astronaut_mirror.png": "mirror",
    "angry/grey.png": "grey",
}
#: The same photos in split folders: test/ holds three of them, one without a face.
SPLIT = {
    "train/happy/astronaut.png": "face",
    "train/sad/brick.png": "brick",
    "test/happy/astronaut_small.png": "small",
    "test/sad/astronaut_mirror.png": "mirror",
    "test/angry/grey.png": "grey",
}


def image_files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def flat_folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("flat"), FLAT)


@pytest.fixture(scope="module")
def flat_data(flat_folder, tmp_path_factory):
    return load_photo_folder(flat_folder, n_jobs=1, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def face_model(flat_data, tmp_path_factory):
    """HOG -> logistic regression fitted on the folder's own faces (so it gets them right), saved.

    Returns ``(pipeline, path)``.
    """
    from fer_features.persist.files import save_model
    from fer_features.training.pipelines import build_pipeline

    assert len(flat_data) == 3, flat_data.summary()  # the three astronaut photos; the grey square and the brick wall have none
    pipe = build_pipeline("hog", "logreg", pca=None, n_jobs=1).fit(flat_data.X, flat_data.labels)
    path = save_model(pipe, tmp_path_factory.mktemp("model") / "faces.skops", {"features": "hog", "classifier": "logreg"})
    return pipe, path


def expected_scores(root, data, pipe, files):
    """Accuracy, balanced accuracy and macro-F1 of ``files`` with a face-less photo counted wrong,
    computed here from the model's predictions on the faces found."""
    predicted = dict(zip(data.names.tolist(), pipe.predict(data.X).tolist()))
    y_true = [normalise_class(f.split("/")[-2]) for f in files]
    y_pred = [predicted.get(f, "nothing") for f in files]
    recalls = [np.mean([p == c for t, p in zip(y_true, y_pred) if t == c]) for c in sorted(set(y_true))]
    return {
        "correct": sum(t == p for t, p in zip(y_true, y_pred)),
        "balanced_by_hand": float(np.mean(recalls)),
        "balanced": balanced_accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=sorted(set(y_true) | set(predicted.values())), average="macro", zero_division=0),
        "y_true": y_true,
    }


# --------------------------------------------------------------------------- library


def test_evaluate_split_all_scores_every_photo(flat_folder, flat_data, face_model):
    pipe, _ = face_model
    files = image_files(flat_folder)
    metrics = evaluate_split(pipe, flat_data, "all")
    exp = expected_scores(flat_folder, flat_data, pipe, files)
    assert 0 < exp["correct"] < len(files)  # the folder tells a right count from a wrong one

    assert metrics["split"] == "all" and metrics["n"] == len(files) == 5
    assert metrics["accuracy"] == pytest.approx(exp["correct"] / len(files))
    assert metrics["balanced_accuracy"] == pytest.approx(exp["balanced"]) == pytest.approx(exp["balanced_by_hand"])
    assert metrics["macro_f1"] == pytest.approx(exp["macro_f1"])  # over the classes present, not all seven
    assert metrics["face_detection"] is True
    assert metrics["faces_found"] == len(flat_data) == 3
    assert metrics["faces_found_rate"] == pytest.approx(3 / 5)
    assert metrics["no_face"] == ["angry/grey.png", "happy/brick.png"]
    assert metrics["several_faces"] == [] and metrics["unreadable"] == []
    # every photo is in its class's support; the confusion matrix holds the faces classified only
    support = {e: m["support"] for e, m in metrics["per_class"].items()}
    assert support == {e: exp["y_true"].count(e) for e in support}
    assert np.array(metrics["confusion_matrix"]).sum() == 3
    assert metrics["per_class"]["angry"]["recall"] == 0.0
    assert metrics["plot"] is None

    report = format_report(metrics)
    assert "faces found in 3 of 5 photos (60.0%)" in report
    assert "no face (2): angry/grey.png, happy/brick.png" in report
    assert f"balanced accuracy {'':>9} {'':>9} {metrics['balanced_accuracy']:9.3f}" in report


def test_evaluate_counts_missed_images_as_wrong(tiny_model, patterns):
    X, labels = patterns
    X, labels = X[:60:6], labels[:60:6]  # 10 images of angry, disgust and fear
    pred = tiny_model.predict(X)
    missed = ["happy", "sad", "sad"]
    m = evaluate(tiny_model, X, labels, missed=missed)
    y_true = [*labels, *missed]
    y_pred = [*pred, NO_FACE, NO_FACE, NO_FACE]
    present = sorted(set(y_true) | set(pred))
    assert m["n"] == 13 and len(present) < 7
    assert m["accuracy"] == pytest.approx(np.sum(pred == labels) / 13)
    assert m["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0))
    assert m["per_class"]["sad"]["support"] == int(np.sum(labels == "sad")) + 2
    assert np.array(m["confusion_matrix"]).sum() == 10
    # nothing missed: balanced accuracy is sklearn's on the predictions
    X, labels = patterns
    plain = evaluate(tiny_model, X, labels)
    assert plain["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels, tiny_model.predict(X)))


def test_split_folders_score_one_split_or_all(tmp_path, face_model):
    pipe, _ = face_model
    root = write_folder(tmp_path / "photos", SPLIT)
    data = load_photo_folder(root, n_jobs=1, cache_dir=tmp_path / "cache")
    assert data.split_folders and default_split(data) == "PrivateTest"
    test = evaluate_split(pipe, data, "PrivateTest")
    assert test["n"] == len([f for f in image_files(root) if f.startswith("test/")]) == 3
    assert test["no_face"] == ["test/angry/grey.png"] and test["faces_found"] == 2
    every = evaluate_split(pipe, data, "all")
    assert every["n"] == len(image_files(root)) == 5
    assert every["no_face"] == ["test/angry/grey.png", "train/sad/brick.png"]
    exp = expected_scores(root, data, pipe, image_files(root))
    assert every["accuracy"] == pytest.approx(exp["correct"] / 5)
    assert every["balanced_accuracy"] == pytest.approx(exp["balanced"])
    assert every["macro_f1"] == pytest.approx(exp["macro_f1"])


def test_a_fer2013_split_all_is_every_face(make_fer, tiny_model):
    from fer_features.data.fer2013 import load_fer2013

    data = load_fer2013(make_fer(per_class=1).zip)
    assert default_split(data) == "PrivateTest"
    m = evaluate_split(tiny_model, data, "all")
    assert m["n"] == len(data) == 21 and m["faces_found"] == 21 and m["faces_found_rate"] == 1.0
    assert m["face_detection"] is False and m["no_face"] == []
    assert m["accuracy"] == pytest.approx(np.mean(tiny_model.predict(data.X) == data.labels))
    assert "faces found" not in format_report(m)
    with pytest.raises(ValueError, match="unknown split 'test'"):
        evaluate_split(tiny_model, data, "test")


# --------------------------------------------------------------------------- fer evaluate


def pngs(*folders):
    return sorted(p for folder in folders for p in folder.rglob("*.png"))


def test_cli_folder_defaults_to_all_and_writes_no_png(flat_folder, face_model, tmp_path, monkeypatch):
    pipe, path = face_model
    monkeypatch.chdir(tmp_path)
    before = pngs(path.parent, flat_folder)
    result = fer("evaluate", path, "--data", flat_folder, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "all" and metrics["n"] == len(image_files(flat_folder))
    assert metrics["faces_found"] == 3 and metrics["no_face"] == ["angry/grey.png", "happy/brick.png"]
    assert metrics["plot"] is None
    assert pngs(path.parent, flat_folder) == before and not pngs(tmp_path)

    # --split all says the same; --plot writes the PNG there and nowhere else
    result = fer("evaluate", path, "--data", flat_folder, "--split", "all", "--plot", tmp_path / "cm.png")
    assert result.exit_code == 0, result.output
    assert "faces found in 3 of 5 photos" in result.stdout and "no face (2)" in result.stdout
    with Image.open(tmp_path / "cm.png") as im:
        assert im.format == "PNG"
    assert pngs(path.parent, flat_folder) == before and pngs(tmp_path) == [tmp_path / "cm.png"]


def test_cli_unreadable_photo_stops_or_is_skipped(tmp_path, face_model):
    _, path = face_model
    root = write_folder(tmp_path / "photos", FLAT)
    (root / "neutral").mkdir()
    (root / "neutral/broken.jpg").write_bytes(b"not a jpeg")
    assert_user_error(fer("evaluate", path, "--data", root, "--split", "all"), "neutral/broken.jpg", "--skip-bad")
    result = fer("evaluate", path, "--data", root, "--split", "all", "--skip-bad", "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["unreadable"] == ["neutral/broken.jpg"]
    assert metrics["n"] == len(image_files(root)) - 1 and metrics["per_class"]["neutral"]["support"] == 0


def test_cli_fer2013_keeps_private_test_and_plots_only_when_asked(make_fer, tiny_model_path, tmp_path):
    fer_data = make_fer(per_class=1)
    before = pngs(tiny_model_path.parent)
    result = fer("evaluate", tiny_model_path, "--data", fer_data.zip, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "PrivateTest" and metrics["n"] == int(np.sum(fer_data.usage == "PrivateTest"))
    assert metrics["plot"] is None and pngs(tiny_model_path.parent) == before
    result = fer("evaluate", tiny_model_path, "--data", fer_data.zip, "--split", "all", "--json", "--plot", tmp_path / "all.png")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["split"] == "all" and metrics["n"] == len(fer_data.y)
    assert metrics["plot"] == str(tmp_path / "all.png") and (tmp_path / "all.png").is_file()
