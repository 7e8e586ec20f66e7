"""Model soups: the weights of fine-tunes of one network averaged (``average_checkpoints``, ``fer soup``)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import TINY, assert_user_error, fer, make_checkpoint  # noqa: E402

from fer_features.cnn.checkpoints import average_checkpoints, load_checkpoint, save_checkpoint  # noqa: E402
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
