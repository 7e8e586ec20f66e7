"""`fer benchmark`: grid files, the feature and cell caches, resume, the Dask path, output files.

The runs use a tiny real subset (40 faces per split) and cheap heads, so each takes seconds;
their numbers are checked against the same pipeline fitted directly, never against constants.
"""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
from conftest import assert_user_error, fer
from threadpoolctl import threadpool_limits

from fer_features.benchmark import (
    BenchmarkCache,
    Cell,
    Grid,
    load_grid,
    run_benchmark,
    write_benchmarks_md,
    write_results,
)
from fer_features.benchmark import run as run_mod
from fer_features.benchmark.report import COLUMNS, reading, results_frame
from fer_features.data.sources import limit_dataset
from fer_features.training.pipelines import build_pipeline

LIMIT = 40


@pytest.fixture(scope="module")
def tiny_real(real_data):
    """40 faces per usage split of the real FER2013, stratified."""
    return limit_dataset(real_data, LIMIT, 0)


def small_grid(**kwargs) -> Grid:
    defaults = dict(features=["hog", "lbp", "hog+lbp"], classifiers=["logreg"], baseline=False, pca=16)
    return Grid(**{**defaults, **kwargs}).validate()


def events():
    seen = []
    return seen, lambda kind, info: seen.append((kind, info))


# --- grids ----------------------------------------------------------------------------------
def test_default_grid_has_every_feature_set_classifier_and_the_baseline():
    cells = Grid().validate().cells()
    assert len(cells) == 9 * 5 + 1
    assert Cell("hog+cnn", "svm") in cells and Cell("hog+lbp+landmarks+cnn", "logreg") in cells
    assert cells[-1].is_baseline and cells[-1].blocks == []


def test_grid_from_toml_and_yaml_agree(tmp_path):
    toml = tmp_path / "grid.toml"
    toml.write_text('features = ["hog", "hog+lbp"]\nclassifiers = ["logreg"]\nbaseline = false\npca = 0\n'
                    "[classifier_params.logreg]\nC = 0.5\n")
    yaml = tmp_path / "grid.yaml"
    yaml.write_text("features: [hog, hog+lbp]\nclassifiers: [logreg]\nbaseline: false\npca: 0\n"
                    "classifier_params:\n  logreg: {C: 0.5}\n")
    a, b = load_grid(toml), load_grid(yaml)
    assert a == b
    assert [c.name for c in a.cells()] == ["hog → logreg", "hog+lbp → logreg"]
    assert a.pca is None and a.classifier_params == {"logreg": {"C": 0.5}}


@pytest.mark.parametrize(
    "text, fragment",
    [
        ('features = ["hog", "sift"]', "unknown feature(s) 'sift'"),
        ('classifiers = ["forest"]', "unknown classifier 'forest'"),
        ('classifiers = ["cnn"]', "baseline"),
        ("colour = 3", "unknown key(s) colour"),
        ("features = [", "cannot read the grid"),
        ('features = ["hog"]\n[feature_params.lbp]\nradius = 2', "feature_params for lbp"),
    ],
)
def test_bad_grid_file_names_the_file_and_the_problem(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as exc:
        load_grid(path)
    assert str(path) in str(exc.value) and fragment in str(exc.value)


# --- running: numbers, caches, resume -------------------------------------------------------
def test_cells_match_the_pipeline_fitted_directly(tiny_real, tmp_path):
    records = run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path)
    assert [r["cell"] for r in records] == ["hog → logreg", "lbp → logreg", "hog+lbp → logreg"]
    X_train, y_train = tiny_real.split("Training")
    for r in records:
        # the same BLAS thread count as the cell: float32 PCA differs in the last bits across counts
        with threadpool_limits(limits=r["threads"]):
            pipe = build_pipeline(r["features"], "logreg", pca=16, n_jobs=1).fit(X_train, y_train)
            for usage in ("PublicTest", "PrivateTest"):
                X, y = tiny_real.split(usage)
                assert r[usage]["accuracy"] == pytest.approx(np.mean(pipe.predict(X) == y))
        assert r["dims"] == len(pipe.named_steps["features"].get_feature_names_out())
        assert r["fit_seconds"] >= 0 and r["peak_memory_mib"] > 0 and r["cached"] is False
    hog, lbp, both = records
    assert both["dims"] == hog["dims"] + lbp["dims"]
    # the union's extraction costs the sum of its parts
    assert both["extract_img_per_s"] == pytest.approx(1 / (1 / hog["extract_img_per_s"] + 1 / lbp["extract_img_per_s"]), rel=0.01)


def test_second_run_is_served_from_the_cache(tiny_real, tmp_path):
    first = run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path)
    seen, on_event = events()
    second = run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path, on_event=on_event)
    assert all(r["cached"] for r in second)
    assert [r["PrivateTest"] for r in second] == [r["PrivateTest"] for r in first]
    assert not any(kind == "extract-start" for kind, _ in seen)  # nothing extracted again
    assert {info["name"] for kind, info in seen if kind == "extract-done" and info["cached"]} == {"hog", "lbp"}


def test_changed_parameters_miss_the_cache(tiny_real, tmp_path):
    run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path)
    seen, on_event = events()
    grid = small_grid(feature_params={"hog": {"orientations": 6}})
    records = run_benchmark(tiny_real, grid, cache_dir=tmp_path, on_event=on_event)
    assert [kind_info[1]["name"] for kind_info in seen if kind_info[0] == "extract-start"] == ["hog"]  # lbp reused
    cached = {r["cell"]: r["cached"] for r in records}
    assert cached == {"hog → logreg": False, "lbp → logreg": True, "hog+lbp → logreg": False}
    assert records[0]["dims"] == 6 * 49 * 4  # 6 orientations, 7x7 blocks of 2x2 cells (was 9 orientations)
    # other data (another subset) misses too
    seen, on_event = events()
    run_benchmark(limit_dataset(tiny_real, 30, 1), small_grid(features=["lbp"]), cache_dir=tmp_path, on_event=on_event)
    assert [info["name"] for kind, info in seen if kind == "extract-start"] == ["lbp"]


def test_interrupted_run_resumes_where_it_stopped(tiny_real, tmp_path, monkeypatch):
    real_cell = run_mod.run_feature_cell
    calls = []

    def crash_on_hog(cell, *args, **kwargs):
        calls.append(cell.name)
        if cell.features == "hog":  # the last cell to run (widest first)
            raise KeyboardInterrupt("power cut")
        return real_cell(cell, *args, **kwargs)

    monkeypatch.setattr(run_mod, "run_feature_cell", crash_on_hog)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path, n_jobs=1)
    assert calls == ["hog+lbp → logreg", "lbp → logreg", "hog → logreg"]
    assert len(list((tmp_path / "cells").glob("*.json"))) == 2  # the finished cells were stored

    calls.clear()
    monkeypatch.setattr(run_mod, "run_feature_cell", lambda cell, *a, **k: calls.append(cell.name) or real_cell(cell, *a, **k))
    records = run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path, n_jobs=1)
    assert calls == ["hog → logreg"]
    assert {r["cell"]: r["cached"] for r in records} == {"hog → logreg": False, "lbp → logreg": True, "hog+lbp → logreg": True}
    # a damaged cell file is recomputed, not trusted
    victim = next((tmp_path / "cells").glob("lbp_logreg-*.json"))
    victim.write_text("{ half a reco")
    records = run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path, n_jobs=1)
    assert {r["cell"] for r in records if not r["cached"]} == {"lbp → logreg"}


def test_dask_local_cluster_gives_the_local_results(tiny_real, tmp_path):
    distributed = pytest.importorskip("distributed")
    grid = small_grid(features=["hog", "lbp"])
    local = run_benchmark(tiny_real, grid, cache_dir=tmp_path / "local", n_jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        remote = run_benchmark(tiny_real, grid, cache_dir=tmp_path / "dask", backend="dask", scheduler=cluster.scheduler_address)
    assert [r["PrivateTest"]["accuracy"] for r in remote] == [r["PrivateTest"]["accuracy"] for r in local]
    assert all(r["backend"] == "dask" and r["worker_pid"] != os.getpid() for r in remote)


def test_unreachable_scheduler_is_a_clear_error(tiny_real, tmp_path):
    pytest.importorskip("distributed")
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        run_benchmark(tiny_real, small_grid(features=["lbp"]), cache_dir=tmp_path, backend="dask", scheduler="tcp://127.0.0.1:9")


def test_cnn_feature_and_baseline_from_a_checkpoint(tiny_real, tmp_path):
    pytest.importorskip("torch")
    from conftest import make_checkpoint

    from fer_features.cnn.checkpoints import save_checkpoint

    ckpt = make_checkpoint()
    ckpt["classes"] = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    ckpt["n_classes"] = 7
    path = save_checkpoint(ckpt, tmp_path / "tiny.pt")
    grid = small_grid(features=["cnn", "hog+cnn"], baseline=True)
    records = run_benchmark(tiny_real, grid, cache_dir=tmp_path / "cache", cnn_checkpoint=path, n_jobs=1)
    cnn, hog_cnn, base = records
    assert base["clf"] == "cnn" and base["features"] == "pixels" and base["fit_from_checkpoint"]
    assert {"PublicTest", "PrivateTest", "PrivateTest+TTA"} <= set(base)
    assert hog_cnn["dims"] == cnn["dims"] + 1764
    # a different network (same path) is a cache miss for every cell that uses it
    save_checkpoint(make_checkpoint(seed=1) | {"classes": ckpt["classes"], "n_classes": 7}, path)
    again = run_benchmark(tiny_real, grid, cache_dir=tmp_path / "cache", cnn_checkpoint=path, n_jobs=1)
    assert not any(r["cached"] for r in again)
    with pytest.raises(ValueError, match="no CNN checkpoint"):
        run_benchmark(tiny_real, grid, cache_dir=tmp_path / "cache", cnn_checkpoint=tmp_path / "missing.pt")


# --- outputs --------------------------------------------------------------------------------
def test_output_files_schema(tiny_real, tmp_path):
    records = run_benchmark(tiny_real, small_grid(cv=2), cache_dir=tmp_path / "cache")
    meta = {"command": "fer benchmark --test", "date": "today", "machine": run_mod.machine_info(),
            "library_versions": {"numpy": np.__version__}, "data": {"source": "x", "fingerprint": tiny_real.fingerprint,
                                                                     "counts": tiny_real.counts()}}
    paths = write_results(records, meta, tmp_path / "results")
    assert set(paths) == {"csv", "json", "markdown", "accuracy_by_cell", "accuracy_vs_time", "accuracy_vs_speed", "per_class_f1", "confusion_best"}
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and len(rows) == len(records) == 3
    assert [float(r["private_accuracy"]) for r in rows] == pytest.approx([r["PrivateTest"]["accuracy"] for r in records])
    assert all(float(r["cv_accuracy_mean"]) == pytest.approx(rec["cv"]["accuracy_mean"]) for r, rec in zip(rows, records))
    stored = json.loads(paths["json"].read_text())
    assert {"command", "date", "machine", "library_versions", "data", "cells"} <= set(stored)
    assert stored["cells"][0]["PrivateTest"]["confusion_matrix"] == records[0]["PrivateTest"]["confusion_matrix"]
    for key in ("accuracy_by_cell", "accuracy_vs_time", "accuracy_vs_speed", "per_class_f1", "confusion_best"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = paths["markdown"].read_text()
    assert table.count("\n| ") == len(records) + 1 and "PrivateTest acc" in table

    report = write_benchmarks_md(records, meta, tmp_path / "BENCHMARKS.md", paths)
    text = report.read_text()
    assert "fer benchmark --test" in text and "results/accuracy_by_cell.png" in text
    for sentence in reading(records):
        assert sentence in text
    best = max(records, key=lambda r: r["PublicTest"]["accuracy"])
    assert f"the best pipeline is `{best['cell']}`" in text


def test_report_sections_live_beside_the_main_report(tmp_path):
    from fer_features.benchmark.report import splice_section

    lines = ["# Benchmarks", "", "- Command: `fer benchmark --data ferplus`", "## Results", "| a |", "### Plot"]
    main = "# Benchmarks\n\nthe main grid\n"
    once = splice_section(main, "FERPlus", lines)
    assert once.startswith(main.rstrip("\n")) and "\n## FERPlus\n" in once
    assert "\n### Results\n" in once and "\n#### Plot\n" in once and "\n# Benchmarks\n" not in once.split("FERPlus")[1]
    # a second run replaces the section, and only it
    again = splice_section(once + "\ntail\n", "FERPlus", [*lines[:2], "- Command: `second`"])
    assert again.count("<!-- section:FERPlus:start -->") == 1 and "second" in again and "ferplus`" not in again
    assert again.startswith(main.rstrip("\n")) and again.endswith("\ntail\n")
    with pytest.raises(ValueError, match="not the other"):
        splice_section("<!-- section:FERPlus:start -->\n", "FERPlus", lines)
    with pytest.raises(ValueError, match="one-line name"):
        splice_section("", "a\nb", lines)


def test_rewriting_the_main_report_keeps_its_sections(tiny_real, tmp_path):
    records = run_benchmark(tiny_real, small_grid(), cache_dir=tmp_path / "cache")
    meta = {"command": "fer benchmark --main", "data": {"counts": tiny_real.counts()}}
    paths = write_results(records, meta, tmp_path / "results")
    path = tmp_path / "BENCHMARKS.md"
    write_benchmarks_md(records, meta, path, paths)
    write_benchmarks_md(records, {**meta, "command": "fer benchmark --ferplus"}, path, paths, section="FERPlus")
    text = path.read_text()
    assert text.index("fer benchmark --main") < text.index("## FERPlus") < text.index("fer benchmark --ferplus")
    write_benchmarks_md(records, {**meta, "command": "fer benchmark --main-again"}, path, paths)  # the main grid rerun
    text = path.read_text()
    assert "--main-again" in text and "fer benchmark --main`" not in text
    assert text.count("## FERPlus") == 1 and "fer benchmark --ferplus" in text


def test_report_section_needs_a_report(tmp_path):
    result = fer("benchmark", "--report-section", "FERPlus", "--results-dir", tmp_path / "r")
    assert result.exit_code == 2 and "--report-section needs --report" in result.output
    broken = tmp_path / "B.md"
    broken.write_text("<!-- section:FERPlus:end -->\n")
    result = fer("benchmark", "--report", broken, "--report-section", "FERPlus", "--results-dir", tmp_path / "r")
    assert result.exit_code == 2 and "not the other" in result.output
    assert not (tmp_path / "r").exists()


def test_results_frame_puts_the_baseline_training_time_in_fit_seconds():
    record = {"features": "pixels", "clf": "cnn", "dims": 256, "fit_seconds": 1785.0, "predict_img_per_s": 900.0,
              "PublicTest": {"accuracy": 0.6}, "PrivateTest": {"accuracy": 0.62, "macro_f1": 0.55}}
    frame = results_frame([record])
    assert frame.loc[0, "fit_seconds"] == 1785.0 and frame.loc[0, "e2e_img_per_s"] == 900.0
    assert np.isnan(frame.loc[0, "extract_img_per_s"])


# --- the command ----------------------------------------------------------------------------
def test_benchmark_command_end_to_end(real_zip, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('features = ["hog", "lbp"]\nclassifiers = ["logreg"]\nbaseline = false\npca = 16\n'
                    '[feature_params.hog]\norientations = 6\n')
    args = ["benchmark", "--data", real_zip, "--grid", grid, "--limit", LIMIT, "--cache-dir", tmp_path / "cache",
            "--results-dir", tmp_path / "results", "--report", tmp_path / "BENCHMARKS.md", "--n-jobs", 1]
    result = fer(*args, "--features", "lbp", "--features", "hog+lbp")  # narrows the file's grid
    assert result.exit_code == 0, result.output
    assert "hog+lbp → logreg" in result.output and "hog → logreg" not in result.output
    stored = json.loads((tmp_path / "results/benchmark.json").read_text())
    assert [c["cell"] for c in stored["cells"]] == ["lbp → logreg", "hog+lbp → logreg"]
    assert stored["command"].startswith("fer ") and stored["data"]["fingerprint"] == stored["cells"][0]["data_fingerprint"]
    assert stored["settings_text"].endswith(", feature parameters hog.orientations=6")
    assert "feature parameters hog.orientations=6" in (tmp_path / "BENCHMARKS.md").read_text()
    again = fer(*args, "--features", "lbp,hog+lbp", "--json")
    assert again.exit_code == 0 and all(r["cached"] for r in json.loads(again.stdout))
    # parameters on the command line merge into the file's: hog keeps its orientations, logreg gets C
    tuned = fer(*args, "--features", "hog", "--clf-param", "logreg.C=0.5", "--feature-param", "hog.pixels_per_cell=[8, 8]")
    assert tuned.exit_code == 0, tuned.output
    stored = json.loads((tmp_path / "results/benchmark.json").read_text())
    assert stored["grid"]["classifier_params"] == {"logreg": {"C": 0.5}}
    assert stored["grid"]["feature_params"] == {"hog": {"orientations": 6, "pixels_per_cell": [8, 8]}}
    assert stored["cells"][0]["settings"]["clf_params"] == {"C": 0.5} and not stored["cells"][0]["cached"]
    bad = fer(*args, "--clf-param", "C=0.5")
    assert bad.exit_code == 2 and "--clf-param 'C=0.5'" in bad.output and "svm.C=20" in bad.output


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--features", "hog+sift"], "unknown feature(s) 'sift'"),
        (["--clf", "forest"], "unknown classifier 'forest'"),
        (["--scheduler", "tcp://x:1"], "--scheduler is for --backend dask"),
        (["--grid", "nope.toml"], "nope.toml: no such grid file"),
        (["--cv", "1"], "cv must be 0"),
    ],
)
def test_benchmark_command_user_errors(args, fragment, tmp_path):
    result = fer("benchmark", "--data", tmp_path / "none.zip", "--no-baseline", *args)
    assert_user_error(result, fragment)


def test_benchmark_without_cnn_needs_no_checkpoint(real_zip, tmp_path):
    result = fer("benchmark", "--data", real_zip, "--features", "lbp", "--clf", "logreg", "--no-baseline", "--pca", 8,
                 "--limit", 20, "--cnn-checkpoint", tmp_path / "absent.pt", "--cache-dir", tmp_path / "c",
                 "--results-dir", tmp_path / "r", "--n-jobs", 1)
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "absent.pt").exists()


def test_sparse_features_are_cached_sparse_and_feed_the_stacked_head(tiny_real, tmp_path):
    """sift-bovw with sparse_output is stored as CSR, served back from the cache, and joins dense blocks."""
    import scipy.sparse as sp

    from fer_features.features import SIFTBoVW

    params = {"n_words": 8, "pyramid": (1, 2), "n_train_descriptors": 2000, "encoding": "presence", "norm": "l2",
              "sparse_output": True}
    grid = small_grid(features=["hog+sift-bovw"], classifiers=["stacked-svm"], feature_params={"sift-bovw": params}, pca=8,
                      classifier_params={"stacked-svm": {"decision_function_shape": "ovr"}})  # tiny folds lack classes
    seen, on_event = events()
    first = run_benchmark(tiny_real, grid, cache_dir=tmp_path, on_event=on_event)
    info = [i for kind, i in seen if kind == "extract-done" and i["name"] == "sift-bovw"][0]
    assert info["sparse"] is True
    cached, _ = BenchmarkCache(tmp_path).load_features("sift-bovw", info["key"])
    assert sp.issparse(cached)
    X_train, _ = tiny_real.split("Training")
    expected = SIFTBoVW(**params).fit(X_train).transform(tiny_real.X)
    np.testing.assert_allclose(cached.toarray(), expected.toarray(), rtol=1e-6)
    assert first[0]["dims"] == 1764 + 40 and 0 <= first[0]["PrivateTest"]["accuracy"] <= 1
    again = run_benchmark(tiny_real, grid, cache_dir=tmp_path)
    assert again[0]["cached"] and again[0]["PublicTest"] == first[0]["PublicTest"]


def test_a_fitted_extractor_is_fitted_on_training_only(tiny_real, tmp_path):
    """sift-bovw's cached matrix is the pipeline's: vocabulary from the Training rows, every row transformed."""
    from fer_features.features import SIFTBoVW

    params = {"n_words": 8, "pyramid": (1, 2), "n_train_descriptors": 2000}
    grid = small_grid(features=["sift-bovw"], feature_params={"sift-bovw": params})
    seen, on_event = events()
    records = run_benchmark(tiny_real, grid, cache_dir=tmp_path, on_event=on_event)
    (info,) = [i for kind, i in seen if kind == "extract-done"]
    assert info["fit_on"] == "Training" and info["fit_seconds"] > 0
    assert records[0]["feature_fit_seconds"] == pytest.approx(info["fit_seconds"], abs=0.01)
    X_train, _ = tiny_real.split("Training")
    expected = SIFTBoVW(**params).fit(X_train).transform(tiny_real.X)
    cached = BenchmarkCache(tmp_path).load_features("sift-bovw", info["key"])[0]
    np.testing.assert_allclose(cached, expected, rtol=1e-6)
    # other Training rows (another subset of the same images) are another fit: a miss
    key_other = run_mod.extractor_key("sift-bovw", SIFTBoVW(**params), tiny_real.fingerprint, fit_rows=np.arange(5))
    assert key_other != info["key"]
    assert run_mod.extractor_key("sift-bovw", SIFTBoVW(**params), tiny_real.fingerprint) != info["key"]
