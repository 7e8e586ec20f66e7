"""Issue 14 through the ``fer`` command: each failure the issue lists, reproduced, now handled.

Pixel limits and decompression bombs in a batch, output paths checked before any work, the files
of one run moved into place together, model files that would run code or are not fer-features
pipelines refused at load, the format said, and joblib's workers shielded from Ctrl-C.
"""

from __future__ import annotations

import json
import signal

import joblib
import numpy as np
import pytest
from conftest import assert_user_error, fer, png_claiming
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


def bomb_png(width=20000, height=20000) -> bytes:
    """The issue's file: a PNG whose header claims 20000x20000 pixels, a few hundred bytes long."""
    return png_claiming(width, height)


@pytest.fixture(scope="module")
def model_file(tiny_model_path):
    return tiny_model_path


def no_traceback(result):
    assert "Traceback" not in result.output and not isinstance(result.exception, (ImportError, AttributeError))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


# --------------------------------------------------------------------------- pixel limits


def test_a_bomb_in_a_folder_is_one_error_row_and_the_batch_goes_on(model_file, crop_png, tmp_path):
    """Was: Pillow's DecompressionBombError traceback, exit 1, no result for the good photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a_bomb.png").write_bytes(bomb_png())
    (folder / "b_face.png").write_bytes(crop_png.read_bytes())
    result = fer("predict", folder, "--model", model_file, "--json")
    assert_user_error(result, "a_bomb.png", "400,000,000 pixels", "the limit is 25,000,000")
    bomb, good = json.loads(result.stdout)
    assert bomb["error"] and "pixels" in bomb["error"] and bomb["faces"] == []
    assert good["error"] is None and len(good["faces"]) == 1


def test_an_image_under_pillows_limit_but_over_ours_is_refused_without_decoding(model_file, tmp_path):
    """The issue's second case (a real 10000x10000 PNG took 66 s and 4.95 GiB): refused from its header."""
    path = tmp_path / "big.png"
    path.write_bytes(bomb_png(10000, 10000))  # 100 MP: Pillow only warns, the CLI now stops
    result = fer("predict", path, "--model", model_file)
    assert_user_error(result, "big.png", "10000x10000 = 100,000,000 pixels", "--max-pixels")


def test_max_pixels_lowers_and_raises_the_limit(model_file, crop_png):
    low = fer("predict", crop_png, "--model", model_file, "--max-pixels", 1000, "--json")
    assert_user_error(low, "48x48 = 2,304 pixels; the limit is 1,000")
    ok = fer("predict", crop_png, "--model", model_file, "--max-pixels", 2304, "--json")
    assert ok.exit_code == 0, ok.output
    assert len(json.loads(ok.stdout)[0]["faces"]) == 1


# --------------------------------------------------------------------------- outputs checked before any work


@pytest.fixture
def regular_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


def test_train_out_under_a_file_fails_before_reading_data(regular_file, tmp_path):
    """Was: found only after training and scoring, with a traceback; the work lost."""
    missing_data = tmp_path / "never-read.zip"  # the output is checked first, so this is never opened
    result = fer("train", "--data", missing_data, "--features", "hog", "--clf", "logreg", "--out", regular_file / "m.skops")
    assert_user_error(result, f"--out {regular_file}/m.skops: {regular_file} is a file, not a folder")
    assert "never-read.zip" not in result.output and result.stdout == ""


def test_train_out_in_a_folder_that_refuses(tmp_path, monkeypatch):
    import tempfile

    real = tempfile.mkstemp

    def refuse_probe(*args, prefix=None, **kwargs):
        if prefix == ".fer-write-check.":
            raise PermissionError(13, "Permission denied")
        return real(*args, prefix=prefix, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse_probe)
    result = fer("train", "--data", tmp_path / "x.zip", "--out", tmp_path / "m.skops")
    assert_user_error(result, "cannot write in", "Permission denied")


def test_data_inspect_out_under_a_file(regular_file, tmp_path):
    result = fer("data", "inspect", tmp_path / "never-read.zip", "--out", regular_file / "plots")
    assert_user_error(result, "--out", "is a file, not a folder")


def test_predict_annotate_under_a_file_fails_before_loading_the_model(regular_file, crop_png, tmp_path):
    result = fer("predict", crop_png, "--model", tmp_path / "no-model.skops", "--annotate", regular_file / "out.png")
    assert_user_error(result, "--annotate", "is a file, not a folder")
    assert "no-model" not in result.stderr


def test_evaluate_plot_under_a_file(regular_file, model_file, tmp_path):
    result = fer("evaluate", model_file, "--data", tmp_path / "x.zip", "--plot", regular_file / "cm.png")
    assert_user_error(result, "--plot", "is a file, not a folder")


@pytest.mark.parametrize("option, target", [("--results-dir", "results"), ("--report", "BENCHMARKS.md")])
def test_benchmark_outputs_under_a_file(regular_file, tmp_path, option, target):
    result = fer("benchmark", "--data", tmp_path / "x.zip", "--features", "hog", "--clf", "logreg", "--no-baseline",
                 option, regular_file / target)  # fmt: skip
    assert_user_error(result, option, "is a file, not a folder")


# --------------------------------------------------------------------------- one run's files together


def train_quick(src, out, **kwargs):
    return fer("train", "--data", src.zip, "--features", "hog", "--clf", "logreg", "--pca", 5, "--n-jobs", 1, "--out", out, **kwargs)


def test_an_interrupted_save_leaves_the_previous_run_intact(make_fer, tmp_path, monkeypatch):
    """Was: Ctrl-C while saving left the new run's confusion PNG beside the old model and card."""
    import skops.io

    src = make_fer(per_class=2)
    out = tmp_path / "models" / "m.skops"
    first = train_quick(src, out)
    assert first.exit_code == 0, first.output
    before = {p.name: p.read_bytes() for p in out.parent.iterdir()}
    assert sorted(before) == ["m.confusion.png", "m.json", "m.skops"]

    def interrupted_dump(*args, **kwargs):
        raise KeyboardInterrupt  # Ctrl-C while the model is written (the plot already is)

    monkeypatch.setattr(skops.io, "dump", interrupted_dump)
    second = train_quick(src, out, catch_exceptions=True)
    assert second.exit_code != 0
    assert {p.name: p.read_bytes() for p in out.parent.iterdir()} == before  # no temporary files either


def test_train_says_the_format_and_the_model_loads(make_fer, tmp_path):
    src = make_fer(per_class=2)
    out = tmp_path / "m.skops"
    assert train_quick(src, out).exit_code == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["format"] == "skops" and "skops" in card["library_versions"]
    crop = tmp_path / "crop.png"
    Image.fromarray(src.X[0]).save(crop)
    result = fer("predict", crop, "--model", out, "--json")
    assert result.exit_code == 0, result.output
    assert f"model {out} (skops format)" in result.stderr
    json.loads(result.stdout)  # the note is on stderr: stdout stays JSON


# --------------------------------------------------------------------------- model files


def test_predict_refuses_a_pickle_that_runs_code(crop_png, tmp_path, tiny_model):
    """Was: the code ran, the prediction looked normal, and nothing warned."""
    import pathlib

    class Payload:
        def __reduce__(self):
            return pathlib.Path.touch, (tmp_path / "code-ran",)

    path = tmp_path / "from-elsewhere.joblib"
    joblib.dump({"pipeline": tiny_model, "payload": Payload()}, path)
    result = fer("predict", crop_png, "--model", path)
    assert_user_error(result, "pickle-based", "run any code", "--trust-pickle")
    assert not (tmp_path / "code-ran").exists()


def test_trust_pickle_reads_your_own_joblib_and_says_so(crop_png, tmp_path, tiny_model):
    from fer_features.persist.files import save_model

    path = save_model(tiny_model, tmp_path / "mine.joblib")
    assert_user_error(fer("predict", crop_png, "--model", path), "--trust-pickle")
    result = fer("predict", crop_png, "--model", path, "--trust-pickle", "--json")
    assert result.exit_code == 0, result.output
    assert "pickle (joblib) format, trusted with --trust-pickle" in result.stderr


def test_another_sklearn_classifier_is_refused_with_one_line(crop_png, tmp_path):
    """Was: it passed the model check and failed later with a traceback ("Found array with dim 3")."""
    rng = np.random.default_rng(0)
    other = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())])
    other.fit(rng.normal(size=(40, 3)), np.repeat(["happy", "sad"], 20))
    path = tmp_path / "other.joblib"
    joblib.dump(other, path)
    for command in (("predict", crop_png, "--model", path), ("evaluate", path, "--data", tmp_path / "x.zip")):
        result = fer(*command, "--trust-pickle")
        assert_user_error(result, "not a fer-features model", "not 48x48 face crops")
        assert "dim 3" not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_serve_refuses_a_pickle_by_default(tmp_path, tiny_model):
    from fer_features.persist.files import save_model

    path = save_model(tiny_model, tmp_path / "mine.joblib")
    assert_user_error(fer("serve", "--model", path, "--port", 1), "--trust-pickle")


def test_server_health_says_the_format(model_file, tiny_model):
    from fastapi.testclient import TestClient

    from fer_features.serve import create_app

    with TestClient(create_app(model_file)) as client:
        assert client.get("/health").json()["model_format"] == "skops"


# --------------------------------------------------------------------------- Ctrl-C


def _sigint_self_and_report_mask(i):
    import os
    import signal

    blocked = signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends to every process of the job
    return i, blocked


def test_workers_start_with_sigint_blocked():
    """Was: Ctrl-C in the first seconds printed a worker's KeyboardInterrupt traceback.

    With the shield, a worker's SIGINT stays pending for its whole life: a worker that sends
    itself SIGINT goes on and returns (without it, it would raise KeyboardInterrupt).
    """
    from joblib import Parallel, delayed
    from joblib.externals.loky import get_reusable_executor

    from fer_features.cli.interrupts import shield_workers_from_ctrl_c

    assert shield_workers_from_ctrl_c() and shield_workers_from_ctrl_c()  # idempotent
    get_reusable_executor().shutdown(wait=True, kill_workers=True)  # fresh workers, born shielded
    results = Parallel(n_jobs=2, backend="loky")(delayed(_sigint_self_and_report_mask)(i) for i in range(4))
    assert results == [(i, True) for i in range(4)]
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the parent's mask is unchanged


def test_every_command_installs_the_shield(monkeypatch):
    import fer_features.cli.interrupts as interrupts

    calls = []
    monkeypatch.setattr(interrupts, "shield_workers_from_ctrl_c", lambda: calls.append(1) or True)
    assert fer("list").exit_code == 0
    assert calls == [1]
