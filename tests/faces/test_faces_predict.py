"""fer_features.faces.alignment (reading photos, detection, alignment) and fer_features.inference.photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fer_features.config import DEFAULT_DETECTOR, EMOTIONS
from fer_features.faces.alignment import FER2013_EYES, align_eyes, align_face, detect_faces, find_faces
from fer_features.faces.detectors import get_detector, list_detectors
from fer_features.faces.dlib_models import dlib_model_path
from fer_features.faces.images import ImageError, decode_image, to_grey, to_rgb
from fer_features.inference.photos import annotate, expand_paths, predict_photos

# Where the face is in skimage's astronaut (512x512), loosely: (left, top, right, bottom).
ASTRONAUT_FACE = (140, 30, 270, 175)


def overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / smaller


@pytest.fixture(scope="module")
def astronaut():
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def astronaut_faces(astronaut):
    return find_faces(astronaut, detector="hog")


# --------------------------------------------------------------------------- detection and alignment


def test_astronaut_has_exactly_one_face(astronaut_faces):
    boxes = [f.box for f in astronaut_faces]
    assert len(astronaut_faces) == 1, f"expected one face, found boxes {boxes}"


def test_astronaut_face_box_landmarks_and_crop(astronaut_faces):
    assert astronaut_faces, "no face found in the astronaut photo"
    face = astronaut_faces[0]  # the highest score first
    assert overlap(face.box, ASTRONAUT_FACE) > 0.7
    assert all(isinstance(v, int) for v in face.box)
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
    left, top, right, bottom = face.box
    margin = 0.25 * (right - left)  # dlib's boxes are tight: the chin may lie a little below
    inside = (face.landmarks[:, 0] > left - margin) & (face.landmarks[:, 0] < right + margin)
    inside &= (face.landmarks[:, 1] > top - margin) & (face.landmarks[:, 1] < bottom + margin)
    assert inside.all()
    assert face.landmarks[48:68, 1].mean() > face.landmarks[36:48, 1].mean()  # mouth below the eyes
    assert face.crop.shape == (48, 48) and face.crop.dtype == np.uint8
    assert face.crop.std() > 10  # a face, not a flat patch
    scores = [f.score for f in astronaut_faces]
    assert scores == sorted(scores, reverse=True)


def test_min_score_filters_detections(astronaut, astronaut_faces):
    everything = find_faces(astronaut, detector="hog", min_score=-1.0)
    threshold = get_detector("hog").default_min_score
    assert len(everything) >= len(astronaut_faces)
    assert [f.box for f in everything if f.score >= threshold] == [f.box for f in astronaut_faces]
    assert all(f.score >= threshold for f in astronaut_faces)
    assert find_faces(astronaut, detector="hog", min_score=max(f.score for f in everything) + 0.01) == []


def test_grey_input_finds_the_same_face(astronaut, astronaut_faces):
    grey_faces = find_faces(to_grey(astronaut), detector="hog")
    assert grey_faces and overlap(grey_faces[0].box, astronaut_faces[0].box) > 0.8


# --------------------------------------------------------------------------- the detector registry


def test_detector_registry_lists_and_rejects_names():
    assert list(list_detectors()) == ["yuface", "hog", "mmod"]
    assert DEFAULT_DETECTOR in list_detectors()
    with pytest.raises(ValueError, match="valid names: yuface, hog, mmod"):
        find_faces(np.zeros((64, 64), np.uint8), detector="haar")
    with pytest.raises(ValueError, match="upsample"):
        detect_faces(np.zeros((64, 64), np.uint8), detector="yuface", upsample=-1)


@pytest.mark.parametrize("name", ["yuface", "hog", "mmod"])
def test_each_detector_finds_the_astronaut(astronaut, name):
    detections = detect_faces(astronaut, detector=name)
    assert len(detections) == 1, f"{name}: boxes {[d.box for d in detections]}"
    d = detections[0]
    assert overlap(d.box, ASTRONAUT_FACE) > 0.7 and all(isinstance(v, int) for v in d.box)
    assert d.score >= get_detector(name).default_min_score
    (face,) = find_faces(astronaut, detector=name)
    assert face.crop.shape == (48, 48) and face.crop.dtype == np.uint8 and face.crop.std() > 10
    assert face.eyes.shape == (2, 2)
    (left, right) = face.eyes
    assert left[0] < right[0] and abs(left[1] - right[1]) < 10  # image-left eye first, level
    assert d.box[0] < left[0] < right[0] < d.box[2] and d.box[1] < left[1] < d.box[3]
    if name == "yuface":  # aligned on its own eye points: no 68-point landmarks unless asked
        assert face.landmarks is None and d.eyes is not None
        (with_points,) = find_faces(astronaut, detector=name, landmarks=True)
        assert with_points.landmarks.shape == (68, 2)
        # its eye points and dlib's eye centres agree within a few pixels in this 512-pixel photo
        assert np.abs(with_points.eyes - face.eyes).max() < 4
    else:
        assert face.landmarks.shape == (68, 2) and d.eyes is None


def test_yuface_finds_the_cameraman_hog_misses():
    from skimage import data

    (d,) = detect_faces(data.camera(), detector="yuface")
    assert overlap(d.box, (190, 110, 265, 200)) > 0.7
    assert detect_faces(data.camera(), detector="hog") == []


def test_yuface_and_hog_crops_frame_the_face_alike(astronaut):
    # both put the eyes where FER2013 has them (each by its own calibration): the crops agree
    (yu,) = find_faces(astronaut, detector="yuface")
    (hog,) = find_faces(astronaut, detector="hog")
    assert np.abs(yu.crop.astype(int) - hog.crop.astype(int)).mean() < 25


def test_yuface_upsample_sets_the_working_size(astronaut, monkeypatch):
    import yuface

    from fer_features.faces import detectors

    seen = []
    real, real_buffer = yuface.c_detect, detectors._detect_into_buffer
    monkeypatch.setattr(yuface, "c_detect", lambda bgr: seen.append(bgr.shape) or real(bgr))  # the fallback
    monkeypatch.setattr(detectors, "_detect_into_buffer", lambda fn, bgr: seen.append(bgr.shape) or real_buffer(fn, bgr))
    detect_faces(astronaut, detector="yuface")  # 512 px shrunk to 320
    detect_faces(astronaut, detector="yuface", upsample=1)  # 640 > 512: used as it is
    detect_faces(astronaut[:100, :150], detector="yuface")  # small photos are never enlarged
    assert seen == [(320, 320, 3), (512, 512, 3), (100, 150, 3)]


def test_align_eyes_matches_aligning_the_whole_photo():
    # only the region the crop samples is filtered; the result equals filtering the whole photo
    from scipy.ndimage import gaussian_filter
    from skimage.transform import SimilarityTransform, warp

    rng = np.random.default_rng(0)
    grey = (gaussian_filter(rng.random((400, 500)), 3) * 255 / 0.6).clip(0, 255).astype(np.uint8)
    eyes = np.array([[210.0, 180.0], [300.0, 175.0]])
    crop = align_eyes(grey, eyes)
    tform = SimilarityTransform.from_estimate(eyes, np.array(FER2013_EYES))
    whole = gaussian_filter(grey.astype(np.float32), (1 / tform.scale - 1) / 2)
    expected = warp(whole, tform.inverse, output_shape=(48, 48), order=1, mode="edge", preserve_range=True)
    assert np.abs(crop.astype(int) - np.clip(expected, 0, 255).round().astype(int)).max() <= 1


def test_align_face_puts_eyes_where_fer2013_has_them():
    # align a synthetic image whose "eyes" are two bright dots; they must land on FER2013_EYES
    grey = np.zeros((300, 400), np.uint8)
    landmarks = np.zeros((68, 2), np.float32)
    left, right = np.array([150.0, 120.0]), np.array([230.0, 140.0])  # tilted eye line
    landmarks[36:42] = left
    landmarks[42:48] = right
    for x, y in (left, right):
        grey[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
    crop = align_face(grey, landmarks, size=96)
    assert crop.shape == (96, 96) and crop.dtype == np.uint8
    for (ex, ey), half in zip(FER2013_EYES, (slice(0, 48), slice(48, 96))):
        ys, xs = np.nonzero(crop[:, half] > 0)
        weights = crop[:, half][ys, xs].astype(float)
        cx = np.average(xs, weights=weights) + half.start
        cy = np.average(ys, weights=weights)
        assert abs(cx - ex * 2) < 1.5 and abs(cy - ey * 2) < 1.5


def test_blank_and_flat_photos_have_no_face():
    assert find_faces(np.zeros((200, 200, 3), np.uint8)) == []
    assert find_faces(np.full((200, 300), 128, np.uint8)) == []


def test_dlib_model_path(monkeypatch, tmp_path):
    assert dlib_model_path("landmarks68").is_file()
    with pytest.raises(ValueError, match="landmarks68"):
        dlib_model_path("landmarks99")
    monkeypatch.setenv("FER_FEATURES_DLIB_MODELS", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="FER_FEATURES_DLIB_MODELS"):
        dlib_model_path("landmarks68")


# --------------------------------------------------------------------------- reading images


def test_load_rgba_png_composited_on_white(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :10, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba).save(tmp_path / "a.png")
    out = decode_image(tmp_path / "a.png")
    assert out.shape == (10, 20, 3) and out.dtype == np.uint8
    assert (out[:, :10] == [200, 0, 0]).all()
    assert (out[:, 10:] == 255).all()


def test_load_16bit_grey_png(tmp_path):
    values = (np.arange(32 * 64).reshape(32, 64) * 32).astype(np.uint16)  # 0..65504
    Image.fromarray(values).save(tmp_path / "g16.png")
    out = decode_image(tmp_path / "g16.png")
    assert out.shape == (32, 64, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(out[..., 0], values / 257, atol=1)
    assert (out[..., 0] == out[..., 2]).all()


def test_load_dark_16bit_grey_png_is_scaled_too(tmp_path):
    # a 16-bit image whose values happen to be small is still 16-bit data: 200/65535 is black
    values = (np.arange(32 * 64).reshape(32, 64) % 201).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "dark16.png")
    out = decode_image(tmp_path / "dark16.png")
    np.testing.assert_allclose(out[..., 0], values / 257, atol=1)


def test_load_grey_jpeg(tmp_path):
    Image.fromarray(np.full((30, 50), 90, np.uint8)).save(tmp_path / "g.jpg")
    out = decode_image(tmp_path / "g.jpg")
    assert out.shape == (30, 50, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - 90).max() <= 2


def test_load_exif_rotated_jpeg(tmp_path):
    image = np.zeros((30, 60, 3), np.uint8)
    image[:, :10] = 255  # white band on the left
    im = Image.fromarray(image)
    exif = im.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    im.save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = decode_image(tmp_path / "rot.jpg")
    assert out.shape == (60, 30, 3)
    assert out[:10].mean() > 200 and out[-10:].mean() < 50  # the left band is now at the top


def test_unreadable_files(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(ImageError, match="notes.png"):
        decode_image(bad)
    good = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ImageError, match="truncated.png"):
        decode_image(truncated)
    with pytest.raises(FileNotFoundError, match="missing.png"):
        decode_image(tmp_path / "missing.png")


def test_to_rgb_arrays():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert (to_rgb(grey) == grey[..., None]).all() and to_rgb(grey).shape == (3, 4, 3)
    assert (to_rgb(np.ones((2, 2))) == 255).all()  # float 0..1
    with pytest.raises(ImageError, match="shape"):
        to_rgb(np.zeros((2, 2, 2), np.uint8))


def test_to_grey_is_pil_luma():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).convert("L")).astype(int)
    assert np.abs(to_grey(rgb).astype(int) - expected).max() <= 1


# --------------------------------------------------------------------------- prediction


def test_predict_photos_blank_image_has_no_faces(tiny_model):
    assert predict_photos(tiny_model, [np.zeros((120, 160, 3), np.uint8)]) == [[]]


def test_48x48_image_is_classified_directly(tiny_model, patterns):
    X, labels = patterns
    crop = X[0]
    results = predict_photos(tiny_model, [np.zeros((100, 100), np.uint8), crop, np.repeat(X[-1][..., None], 3, 2)])
    assert results[0] == []
    (face,) = results[1]
    assert face.box == (0, 0, 48, 48) and face.detection_score is None
    assert list(face.probabilities) == [str(c) for c in tiny_model.classes_]
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    expected = tiny_model.predict_proba(crop[None])[0]
    assert face.label == tiny_model.classes_[expected.argmax()]
    assert face.probabilities[face.label] == pytest.approx(expected.max(), abs=1e-4)
    # an RGB 48x48 crop goes through its luma
    assert results[2][0].label == tiny_model.predict(X[-1][None])[0]


def test_predict_photos_astronaut(tiny_model, astronaut):
    (faces,) = predict_photos(tiny_model, [astronaut])
    assert faces and overlap(faces[0].box, ASTRONAUT_FACE) > 0.7
    for face in faces:
        assert set(face.probabilities) == set(EMOTIONS)
        assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert face.detection_score is not None


def test_predict_results_reports_bad_files_and_goes_on(tiny_model, patterns, tmp_path):
    from fer_features.inference.recognizer import Recognizer

    good = tmp_path / "crop.png"
    Image.fromarray(patterns[0][5]).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    results = Recognizer(tiny_model, progress=False).predict_results([bad, good])
    assert [r.path for r in results] == [str(bad), str(good)]
    assert results[0].error and "bad.jpg" in results[0].error and results[0].faces == []
    assert results[1].error is None and len(results[1].faces) == 1
    assert (results[1].width, results[1].height) == (48, 48)
    d = results[1].to_dict()
    assert d["faces"][0]["box"] == (0, 0, 48, 48)


def test_expand_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.png", "a.JPG", "sub/c.webp", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    single = tmp_path / "notes.txt"
    assert expand_paths([tmp_path, single]) == [tmp_path / "a.JPG", tmp_path / "b.png", tmp_path / "sub/c.webp", single]


def test_annotate_keeps_size(tiny_model, astronaut):
    (faces,) = predict_photos(tiny_model, [astronaut])
    canvas = annotate(astronaut, faces)
    assert canvas.size == (astronaut.shape[1], astronaut.shape[0]) and canvas.mode == "RGB"
    assert (np.asarray(canvas) != astronaut).any()  # something was drawn
    assert (astronaut == np.asarray(canvas)).mean() > 0.8  # but only boxes and labels


def test_yuface_gives_c_detects_results_without_its_leak(astronaut_png):
    """yuface's c_detect leaks its 36 KiB result buffer per call; ours calls libfacedetection directly."""
    from pathlib import Path

    from PIL import Image
    from yuface import c_detect

    from fer_features.faces.detectors import _detect_into_buffer, _facedetect_cnn

    fn = _facedetect_cnn()
    assert fn is not None  # the wheel's library and symbol are found
    photo = np.asarray(Image.open(astronaut_png).convert("RGB"))
    for bgr in (photo[::2, ::2, ::-1], photo[100:400, 50:300, ::-1], np.zeros((64, 80, 3), np.uint8)):
        bgr = np.ascontiguousarray(bgr)
        ours, theirs = _detect_into_buffer(fn, bgr), c_detect(bgr)
        assert ours.shape == theirs.shape and np.array_equal(ours[:, :15], theirs[:, :15])

    def rss_kib() -> int:
        return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS"))

    small = np.ascontiguousarray(photo[::4, ::4, ::-1])
    _detect_into_buffer(fn, small)
    before = rss_kib()
    for _ in range(1000):
        _detect_into_buffer(fn, small)
    assert rss_kib() - before < 8 * 1024  # c_detect: 36 MiB more after 1,000 calls


def test_small_square_image_without_a_face_is_taken_whole(astronaut):
    from skimage import data
    from skimage.transform import resize

    from fer_features.faces.alignment import WHOLE_FACE_MAX_SIDE, WHOLE_FACE_MIN_SIDE, faces_in, whole_image_face

    # the brick texture: no face for the detector, and not flat; 110x100 grey, its central
    # 100x100 square is the crop
    brick = data.brick()[:110, :100]
    assert find_faces(brick) == []
    _, faces = faces_in(brick)
    assert len(faces) == 1
    face = faces[0]
    assert face.box == (0, 5, 100, 105) and face.score is None and face.landmarks is None
    expected = resize(brick[5:105].astype(np.float32), (48, 48), anti_aliasing=True, preserve_range=True)
    np.testing.assert_array_equal(face.crop, np.clip(expected.round(), 0, 255).astype(np.uint8))
    # off on request, and when a detection score is asked for
    assert faces_in(brick, whole_if_none=False)[1] == []
    assert faces_in(brick, min_score=0.5)[1] == []
    # RGB, RGBA (opaque) and float input give the grey image's crop
    rgb = np.repeat(brick[..., None], 3, axis=2)
    rgba = np.concatenate([rgb, np.full(brick.shape + (1,), 255, np.uint8)], axis=2)
    for image in (rgb, rgba, brick / 255.0):
        np.testing.assert_array_equal(whole_image_face(image).crop, face.crop)
    # the size limits are inclusive; beyond them, 4:3, or flat: no face
    wall = data.brick()
    assert whole_image_face(wall[:WHOLE_FACE_MAX_SIDE, :WHOLE_FACE_MAX_SIDE]) is not None
    assert whole_image_face(wall[:WHOLE_FACE_MIN_SIDE, :WHOLE_FACE_MIN_SIDE]) is not None
    assert whole_image_face(wall[: WHOLE_FACE_MAX_SIDE + 1, : WHOLE_FACE_MAX_SIDE + 1]) is None
    assert whole_image_face(wall[: WHOLE_FACE_MIN_SIDE - 1, : WHOLE_FACE_MIN_SIDE - 1]) is None
    assert whole_image_face(wall[:120, :160]) is None
    assert whole_image_face(np.full((100, 100, 3), 128, np.uint8)) is None
    # a face the detector finds is aligned as before, not taken whole
    small = np.asarray(Image.fromarray(astronaut[20:190, 125:285]).resize((150, 160)))
    (found,) = faces_in(small)[1]
    assert found.score is not None


def test_small_face_crop_through_predict_photos_and_video_frames(tiny_model, tmp_path):
    from skimage import data

    from fer_features.inference.video import iter_predictions, open_capture

    brick = np.repeat(data.brick()[:100, :100, None], 3, axis=2)
    (faces,) = predict_photos(tiny_model, [brick])
    assert len(faces) == 1 and faces[0].box == (0, 0, 100, 100) and faces[0].detection_score is None
    assert predict_photos(tiny_model, [brick], whole_if_none=False) == [[]]
    # a video frame is a scene: never taken whole
    import cv2

    path = tmp_path / "bricks.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (100, 100))
    for _ in range(2):
        writer.write(brick)
    writer.release()
    got = [faces for _, _, faces in iter_predictions(tiny_model, open_capture(path))]
    assert len(got) == 2 and got == [[], []]


def test_photo_folder_keeps_a_small_face_crop_the_detector_misses(tmp_path):
    from skimage import data

    from fer_features.data.photos import load_photo_folder

    (tmp_path / "photos/happy").mkdir(parents=True)
    Image.fromarray(data.astronaut()).save(tmp_path / "photos/happy/astronaut.png")
    Image.fromarray(data.brick()[:100, :100]).save(tmp_path / "photos/happy/crop.png")
    Image.fromarray(data.brick()).save(tmp_path / "photos/happy/wall.png")  # 512x512: still no face
    folder = load_photo_folder(tmp_path / "photos", n_jobs=1, cache_dir=tmp_path / "cache")
    assert sorted(folder.names.tolist()) == ["happy/astronaut.png", "happy/crop.png"]
    assert dict(folder.problems) == {"happy/wall.png": "no face"}
