"""Model soups: the weights of fine-tunes of one network averaged (``average_checkpoints``, ``fer soup``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import TINY, assert_user_error, fer, make_checkpoint, pattern_images, pixel_string, write_csv  # noqa: E402

from fer_features.cnn.checkpoints import load_checkpoint, save_checkpoint  # noqa: E402
from fer_features.cnn.classifier import CNNClassifier  # noqa: E402
from fer_features.cnn.soup import average_checkpoints, greedy_soup  # noqa: E402
from fer_features.config import EMOTIONS  # noqa: E402

CLASSES = sorted(EMOTIONS)


def _member(tmp_path, seed, classes=CLASSES, **kwargs):
    ckpt = make_checkpoint(seed=seed, **kwargs)
    ckpt["classes"] = list(classes)
    ckpt["int8"] = {"engine": "x86"}  # a calibration that the soup must not inherit
    return save_checkpoint(ckpt, tmp_path / f"m{seed}.pt")


def test_soup_is_the_mean_of_the_weights_with_rows_matched_by_class(tmp_path):
    a, b = _member(tmp_path, 1), _member(tmp_path, 2)
    reordered = CLASSES[::-1]
    c_ckpt = make_checkpoint(seed=3)
    c_ckpt["classes"] = reordered
    c = save_checkpoint(c_ckpt, tmp_path / "m3.pt")
    soup = average_checkpoints([a, b, c])
    states = [load_checkpoint(p)["state_dict"] for p in (a, b, c)]
    for key, value in soup["state_dict"].items():
        assert value.dtype == states[0][key].dtype  # float16 weights, integer counters as they were
        if not value.is_floating_point():
            continue
        third = states[2][key].float()
        if key.startswith("classifier."):
            third = third[[reordered.index(name) for name in CLASSES]]  # the third member's rows in CLASSES' order
        expected = (states[0][key].float() + states[1][key].float() + third) / 3
        np.testing.assert_allclose(value.float().numpy(), expected.numpy(), atol=2e-3)
    assert soup["classes"] == CLASSES and "int8" not in soup
    assert [m["checkpoint"] for m in soup["soup"]["members"]] == [str(a), str(b), str(c)]
    # the classifier really was reordered: the plain mean of the rows differs
    plain = sum(s["classifier.weight"].float() for s in states) / 3
    assert not np.allclose(soup["state_dict"]["classifier.weight"].float().numpy(), plain.numpy(), atol=2e-3)


def test_soup_refuses_members_of_another_start(tmp_path):
    a = _member(tmp_path, 1)
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([a])
    wide = _member(tmp_path, 4, net={**TINY, "embedding_dim": 32})
    with pytest.raises(ValueError, match="m4.pt: its network"):
        average_checkpoints([a, wide])
    other = _member(tmp_path, 5, classes=[c.upper() for c in CLASSES])
    with pytest.raises(ValueError, match="m5.pt: its classes"):
        average_checkpoints([a, other])
    shifted = _member(tmp_path, 6, mean=0.5)
    with pytest.raises(ValueError, match="m6.pt: its input standardisation"):
        average_checkpoints([a, shifted])
    with pytest.raises(FileNotFoundError):
        average_checkpoints([a, tmp_path / "gone.pt"])
    # the same network with its widths as a list (a config read back from JSON) is one architecture
    listed = _member(tmp_path, 7, net={**TINY, "widths": list(TINY["widths"])})
    assert average_checkpoints([a, listed])["soup"]["members"][1]["checkpoint"] == str(listed)


def test_fer_soup_cli(tmp_path):
    a, b = _member(tmp_path, 1), _member(tmp_path, 2)
    out = tmp_path / "soup.pt"
    result = fer("soup", str(a), str(b), "--out", str(out))
    assert result.exit_code == 0, result.output
    written = load_checkpoint(out)["state_dict"]
    expected = average_checkpoints([a, b])["state_dict"]
    assert all(torch.equal(written[k], expected[k]) for k in expected)
    assert_user_error(fer("soup", str(a), str(tmp_path / "wide.pt"), "--out", str(tmp_path / "x.pt")), "wide.pt")
    assert not (tmp_path / "x.pt").exists()


def _greedy_case(tmp_path):
    """A network, an exact copy of it, and one whose classifier is -3 times its own: on faces
    labelled with the first network's predictions the first and the copy score 1, and any soup
    with the third scores the argmin of the first's logits."""
    a = _member(tmp_path, 1)
    copy = save_checkpoint(load_checkpoint(a), tmp_path / "copy.pt")
    bad_ckpt = load_checkpoint(a)
    for key in ("classifier.weight", "classifier.bias"):
        bad_ckpt["state_dict"][key] = (-3 * bad_ckpt["state_dict"][key].float()).half()
    bad = save_checkpoint(bad_ckpt, tmp_path / "bad.pt")
    X, _ = pattern_images(per_class=3)
    y = CNNClassifier.from_checkpoint(a, precision="fp32").predict(X)
    return a, copy, bad, X, y


def test_greedy_soup_keeps_only_the_members_that_do_not_lower_accuracy(tmp_path):
    a, copy, bad, X, y = _greedy_case(tmp_path)
    soup = greedy_soup([bad, copy, a], X, y)
    trace = soup["soup"]["ingredients"]
    # tried best first (the copy and the first tie: given order), the bad one last and left out
    assert [t["checkpoint"] for t in trace] == [str(copy), str(a), str(bad)]
    assert [t["kept"] for t in trace] == [True, True, False]
    assert trace[0]["accuracy"] == trace[1]["soup_accuracy"] == 1.0 and trace[2]["soup_accuracy"] < 1.0
    assert [m["checkpoint"] for m in soup["soup"]["members"]] == [str(copy), str(a)]
    assert soup["soup"]["method"] == "greedy" and soup["soup"]["held_out"] == len(y)
    first = load_checkpoint(a)["state_dict"]
    assert all(torch.equal(soup["state_dict"][k], first[k]) for k in first)  # the mean of two equal networks
    # the uniform soup of the same three is a different, worse network
    uniform = average_checkpoints([bad, copy, a])
    assert not torch.equal(uniform["state_dict"]["classifier.weight"], first["classifier.weight"])
    # the recorded accuracy is the saved soup's own
    path = save_checkpoint(soup, tmp_path / "soup.pt")
    assert np.mean(CNNClassifier.from_checkpoint(path, precision="fp32").predict(X) == y) == trace[1]["soup_accuracy"]


def test_greedy_soup_keeps_the_first_paths_class_order_when_another_member_is_best(tmp_path):
    a, copy, bad, X, y = _greedy_case(tmp_path)
    # the bad network first, its classes listed the other way round: the best member (a) is not first
    flipped = load_checkpoint(bad)
    order = CLASSES[::-1]
    flipped["classes"] = order
    for key in ("classifier.weight", "classifier.bias"):
        flipped["state_dict"][key] = flipped["state_dict"][key][[CLASSES.index(c) for c in order]]
    first = save_checkpoint(flipped, tmp_path / "flipped.pt")
    soup = greedy_soup([first, a], X, y)
    assert [m["checkpoint"] for m in soup["soup"]["members"]] == [str(a)]
    assert soup["classes"] == order
    path = save_checkpoint(soup, tmp_path / "soup.pt")
    np.testing.assert_array_equal(CNNClassifier.from_checkpoint(path, precision="fp32").predict(X), y)


def test_greedy_soup_checks_its_input(tmp_path):
    a, copy, bad, X, y = _greedy_case(tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        greedy_soup([], X, y)
    with pytest.raises(ValueError, match="faces but y"):
        greedy_soup([a, copy], X, y[:-1])
    with pytest.raises(ValueError, match="held-out faces"):
        greedy_soup([a, copy], X[:0], y[:0])
    with pytest.raises(ValueError, match="not among"):
        greedy_soup([a, copy], X, np.where(y == y[0], "bored", y))
    wide = _member(tmp_path, 4, net={**TINY, "embedding_dim": 32})
    with pytest.raises(ValueError, match="m4.pt: its network"):
        greedy_soup([a, wide], X, y)
    assert greedy_soup([bad], X, y)["soup"]["members"][0]["checkpoint"] == str(bad)  # one ingredient: itself


def test_fer_soup_greedy_cli_chooses_on_publictest_only(tmp_path):
    a, copy, bad, X, y = _greedy_case(tmp_path)
    from fer_features.config import EMOTIONS as ORDER

    # PublicTest labelled as the first network predicts; PrivateTest labelled the other way, so
    # a soup chosen on PrivateTest would keep the bad network
    wrong = CNNClassifier.from_checkpoint(bad, precision="fp32").predict(X)
    rows = [(ORDER.index(label), pixel_string(x), "PublicTest") for x, label in zip(X, y)]
    rows += [(ORDER.index(label), pixel_string(x), "PrivateTest") for x, label in zip(X, wrong)]
    rows += [(ORDER.index(label), pixel_string(x), "Training") for x, label in zip(X[:7], y[:7])]
    data = write_csv(tmp_path / "fer2013.csv", rows)
    out = tmp_path / "greedy.pt"
    result = fer("soup", str(bad), str(a), "--greedy", "--data", str(data), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [m["checkpoint"] for m in load_checkpoint(out)["soup"]["members"]] == [str(a)]
    assert "left out" in result.output and "bad.pt" in result.output
    no_public = write_csv(tmp_path / "private.csv", [r for r in rows if r[2] != "PublicTest"])
    assert_user_error(
        fer("soup", str(a), "--greedy", "--data", str(no_public), "--out", str(tmp_path / "y.pt")), "PublicTest"
    )
    assert not (tmp_path / "y.pt").exists()
    assert_user_error(
        fer(
            "soup", str(a), str(tmp_path / "gone.pt"), "--greedy", "--data", str(data), "--out", str(tmp_path / "w.pt")
        ),
        "gone.pt",
    )
    assert_user_error(fer("soup", str(a), str(copy), "--data", str(data), "--out", str(tmp_path / "z.pt")), "--greedy")
    assert not (tmp_path / "z.pt").exists()
    int8_out = tmp_path / "greedy-int8.pt"
    from fer_features.cnn import int8 as int8_module

    real, calibrated_on = int8_module.calibrate_checkpoint, []
    with pytest.MonkeyPatch.context() as mp:  # calibrated on the Training faces only
        mp.setattr(
            int8_module, "calibrate_checkpoint", lambda c, F, **kw: calibrated_on.append(F.copy()) or real(c, F, **kw)
        )
        args = ("--greedy", "--precision", "int8", "--data", str(data), "--out", str(int8_out))
        result = fer("soup", str(bad), str(a), *args)
    assert result.exit_code == 0, result.output
    assert len(calibrated_on) == 3 and all(np.array_equal(F, X[:7]) for F in calibrated_on)
    written = load_checkpoint(int8_out)["soup"]
    assert written["precision"] == "int8" and [m["checkpoint"] for m in written["members"]] == [str(a)]
    assert_user_error(
        fer("soup", str(a), str(copy), "--precision", "int8", "--out", str(tmp_path / "v.pt")), "--greedy"
    )
    bf16 = ("--greedy", "--precision", "bf16", "--out", str(tmp_path / "v.pt"))
    assert_user_error(fer("soup", str(a), *bf16), "--precision bf16")
    no_training = write_csv(tmp_path / "no-training.csv", [r for r in rows if r[2] != "Training"])
    args = ("--greedy", "--precision", "int8", "--data", str(no_training), "--out", str(tmp_path / "u.pt"))
    assert_user_error(fer("soup", str(a), str(copy), *args), "Training")
    assert not (tmp_path / "v.pt").exists() and not (tmp_path / "u.pt").exists()


def test_greedy_soup_in_int8_scores_each_soup_as_fer_quantize_then_int8_inference_would(tmp_path, monkeypatch):
    from fer_features.cnn import int8 as int8_module
    from fer_features.cnn.int8 import add_int8_calibration

    a, copy, bad, X, y = _greedy_case(tmp_path)
    other = _member(tmp_path, 2)
    calibration = pattern_images(per_class=4, seed=1)[0]
    calibrated, int8_passes = [], []
    real = int8_module.calibrate_checkpoint
    monkeypatch.setattr(
        int8_module, "calibrate_checkpoint", lambda ckpt, X, **kw: calibrated.append(len(X)) or real(ckpt, X, **kw)
    )
    real_forward = CNNClassifier._int8_forward
    monkeypatch.setattr(
        CNNClassifier, "_int8_forward", lambda self, *args: int8_passes.append(1) or real_forward(self, *args)
    )
    soup = greedy_soup([a, other, bad], X, y, precision="int8", calibration_faces=calibration)
    monkeypatch.undo()
    # each ingredient alone, then two trial soups: calibrated and run through the int8 network
    assert calibrated == [len(calibration)] * 5 and len(int8_passes) == 5
    assert soup["soup"]["precision"] == "int8" and "int8" not in soup  # calibrated to choose, saved without
    for step in soup["soup"]["ingredients"]:
        alone = tmp_path / "alone.pt"
        save_checkpoint(load_checkpoint(step["checkpoint"]), alone)
        add_int8_calibration(alone, calibration)
        int8 = CNNClassifier.from_checkpoint(alone, precision="int8").predict(X)
        assert np.mean(int8 == y) == step["accuracy"]
    path = save_checkpoint(soup, tmp_path / "soup.pt")
    add_int8_calibration(path, calibration)
    int8 = CNNClassifier.from_checkpoint(path, precision="int8").predict(X)
    kept = [t for t in soup["soup"]["ingredients"] if t["kept"]]
    assert np.mean(int8 == y) == kept[-1]["soup_accuracy"]
    with pytest.raises(ValueError, match="calibration_faces"):
        greedy_soup([a, copy], X, y, precision="int8")
    with pytest.raises(ValueError, match="expected 'fp32' or 'int8'"):
        greedy_soup([a, copy], X, y, precision="bf16")


def test_from_checkpoint_takes_a_checkpoint_in_memory(tmp_path):
    a = _member(tmp_path, 1)
    X, _ = pattern_images(per_class=2)
    from_file = CNNClassifier.from_checkpoint(a, precision="fp32").predict_proba(X)
    in_memory = CNNClassifier.from_checkpoint(load_checkpoint(a), precision="fp32").predict_proba(X)
    np.testing.assert_array_equal(in_memory, from_file)
    bare = make_checkpoint(seed=1)
    with pytest.raises(ValueError, match="^the checkpoint in memory: the checkpoint has no class names"):
        CNNClassifier.from_checkpoint(bare)
