"""Benchmark outputs: a table (pandas), CSV / JSON / Markdown files, PNG plots, BENCHMARKS.md.

Everything here is computed from the cell records of :func:`fer_features.benchmark.run_benchmark`;
nothing is typed by hand, so a re-run rewrites every number and every sentence.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fer_features.config import EMOTIONS
from fer_features.persist.outputs import atomic_path
from fer_features.plotting import pyplot, save_figure

#: Columns of ``benchmark.csv`` and of the Markdown table, in order (units in the names).
COLUMNS = (
    "features",
    "clf",
    "dims",
    "extract_img_per_s",
    "fit_seconds",
    "predict_img_per_s",
    "e2e_img_per_s",
    "peak_memory_mib",
    "public_accuracy",
    "private_accuracy",
    "private_macro_f1",
    "cv_accuracy_mean",
    "cv_accuracy_std",
    "cached",
)

#: Column titles of the tables, with units.
HEADERS = {
    "features": "features",
    "clf": "classifier",
    "dims": "dims",
    "extract_img_per_s": "extract img/s",
    "fit_seconds": "fit s",
    "predict_img_per_s": "predict img/s",
    "e2e_img_per_s": "end-to-end img/s",
    "peak_memory_mib": "peak MiB",
    "public_accuracy": "PublicTest acc",
    "private_accuracy": "PrivateTest acc",
    "private_macro_f1": "PrivateTest macro-F1",
    "cv_accuracy_mean": "CV acc",
    "cv_accuracy_std": "CV ± std",
    "cached": "cached",
}


def results_frame(records: list[dict]) -> pd.DataFrame:
    """One row per cell with the columns of :data:`COLUMNS` (NaN where not applicable).

    The ``clf`` of the end-to-end baseline is ``cnn`` and its ``features`` ``pixels``; its
    ``fit_seconds`` is the training time stored in its checkpoint.
    """
    rows = []
    for r in records:
        cv = r.get("cv") or {}
        rows.append(
            {
                "features": r["features"],
                "clf": r["clf"],
                "dims": r.get("dims"),
                "extract_img_per_s": r.get("extract_img_per_s"),
                "fit_seconds": r.get("fit_seconds"),
                "predict_img_per_s": r.get("predict_img_per_s"),
                "e2e_img_per_s": r.get("e2e_img_per_s", r.get("predict_img_per_s") if r["clf"] == "cnn" else None),
                "peak_memory_mib": r.get("peak_memory_mib"),
                "public_accuracy": (r.get("PublicTest") or {}).get("accuracy"),
                "private_accuracy": (r.get("PrivateTest") or {}).get("accuracy"),
                "private_macro_f1": (r.get("PrivateTest") or {}).get("macro_f1"),
                "cv_accuracy_mean": cv.get("accuracy_mean"),
                "cv_accuracy_std": cv.get("accuracy_std"),
                "cached": bool(r.get("cached", False)),
            }
        )
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype({c: float for c in COLUMNS if c not in ("features", "clf", "cached")})


def best_record(records: list[dict]) -> dict | None:
    """The cell with the highest PublicTest accuracy (the protocol's selection split), or None."""
    scored = [r for r in records if r.get("PublicTest")]
    return max(scored, key=lambda r: r["PublicTest"]["accuracy"]) if scored else None


def format_value(column: str, value) -> str:
    """One table cell as text: accuracies and F1 to 4 places, dims as an integer, other numbers
    to 3-4 significant digits, ``–`` where not applicable (NaN)."""
    if isinstance(value, (str, bool, np.bool_)):
        return str(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if column in ("public_accuracy", "private_accuracy", "private_macro_f1", "cv_accuracy_mean", "cv_accuracy_std"):
        return f"{value:.4f}"
    if column == "dims":
        return f"{int(value):,}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def without_empty_cv(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the CV columns when no cell was cross-validated."""
    cv = ["cv_accuracy_mean", "cv_accuracy_std"]
    return frame.drop(columns=cv) if frame[cv].isna().all().all() else frame


def markdown_table(frame: pd.DataFrame) -> str:
    """The results as a GitHub Markdown table (cells by :func:`format_value`)."""
    frame = without_empty_cv(frame.drop(columns=["cached"]))
    lines = ["| " + " | ".join(HEADERS[c] for c in frame.columns) + " |"]
    lines.append("|" + "|".join("---" if c in ("features", "clf") else "---:" for c in frame.columns) + "|")
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(format_value(c, v) for c, v in zip(frame.columns, row)) + " |")
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------
def plot_accuracy_by_cell(frame: pd.DataFrame, path: Path) -> Path:
    """Grouped bars: PrivateTest accuracy per feature set (x) and classifier (colour)."""
    cells = frame[frame["clf"] != "cnn"]
    table = cells.pivot_table(index="features", columns="clf", values="private_accuracy", sort=False)
    plt = pyplot()
    fig = plt.figure(figsize=(max(6, 0.9 * len(table) + 2), 4.5))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(table.columns))
    x = np.arange(len(table))
    for i, clf in enumerate(table.columns):
        ax.bar(x + i * width - 0.4 + width / 2, table[clf].to_numpy(), width, label=clf)
    baseline = frame[frame["clf"] == "cnn"]
    if len(baseline) and not np.isnan(baseline["private_accuracy"].iloc[0]):
        ax.axhline(baseline["private_accuracy"].iloc[0], color="k", ls="--", lw=1, label="CNN end to end")
    ax.set_xticks(x, table.index, rotation=30, ha="right")
    ax.set_ylabel("PrivateTest accuracy")
    ax.set_ylim(0, 1)
    ax.set_title("Accuracy by feature set and classifier")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def _plot_accuracy_against(frame: pd.DataFrame, path: Path, column: str, xlabel: str, title: str) -> Path:
    """PrivateTest accuracy against one cost column (log scale), one marker per cell."""
    plt = pyplot()
    fig = plt.figure(figsize=(7, 5))
    ax = fig.add_subplot()
    markers = {"svm": "o", "gbm": "s", "logreg": "^", "linear-svm": "v", "nystroem": "D", "mlp": "P", "cnn": "*"}
    frame = frame[frame[column].notna()]
    for clf, group in frame.groupby("clf", sort=False):
        ax.scatter(group[column], group["private_accuracy"], marker=markers.get(clf, "o"), s=60 if clf != "cnn" else 160, label=clf)
        for row in group.itertuples():
            ax.annotate(row.features, (getattr(row, column), row.private_accuracy), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("PrivateTest accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


def plot_accuracy_vs_time(frame: pd.DataFrame, path: Path) -> Path:
    """PrivateTest accuracy against fit time (log scale, seconds), one marker per cell."""
    return _plot_accuracy_against(frame, path, "fit_seconds", "fit time, seconds (log scale; CNN: training time)", "Accuracy against cost")


def plot_accuracy_vs_speed(frame: pd.DataFrame, path: Path) -> Path:
    """PrivateTest accuracy against the head's predict img/s (log scale), one marker per cell."""
    return _plot_accuracy_against(
        frame, path, "predict_img_per_s", "predict, images/s (log scale; the head on extracted features)", "Accuracy against speed"
    )


def plot_per_class_f1(records: list[dict], path: Path) -> Path:
    """Heat map of PrivateTest F1 per cell (rows) and emotion (columns)."""
    rows = [r for r in records if r.get("PrivateTest")]
    emotions = list(rows[0]["PrivateTest"]["f1"]) if rows else list(EMOTIONS)  # 8 with FERPlus's contempt
    data = np.array([[r["PrivateTest"]["f1"].get(e, np.nan) for e in emotions] for r in rows]) if rows else np.zeros((0, len(emotions)))
    plt = pyplot()
    fig = plt.figure(figsize=(8, 0.32 * len(rows) + 1.8))
    ax = fig.add_subplot()
    im = ax.imshow(data, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(emotions)), emotions, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), [r["cell"] for r in rows], fontsize=7)
    for i in range(data.shape[0]):
        for j in range(data.shape[1]):
            ax.text(j, i, f"{data[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w" if data[i, j] < 0.6 else "k")
    fig.colorbar(im, ax=ax, label="F1")
    ax.set_title("PrivateTest F1 per emotion")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


# --- files ----------------------------------------------------------------------------------
def write_results(records: list[dict], meta: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``benchmark.csv``, ``benchmark.json``, ``benchmark.md`` and the PNG plots.

    Parameters
    ----------
    records : list of dict
        Cell records from :func:`fer_features.benchmark.run_benchmark`.
    meta : dict
        Run description stored in the JSON: ``command``, ``date``, ``machine``,
        ``library_versions``, ``data`` (source, fingerprint, counts), ``grid``.
    out_dir : str or Path
        Created if needed; each file is written atomically.

    Returns
    -------
    dict of {str: Path}
        ``csv``, ``json``, ``markdown``, ``accuracy_by_cell``, ``accuracy_vs_time``,
        ``accuracy_vs_speed``, ``per_class_f1`` and (when a cell has PublicTest scores) ``confusion_best``.
    """
    from fer_features.training.evaluation import plot_confusion_matrix

    out = Path(out_dir)
    frame = results_frame(records)
    paths = {
        "csv": out / "benchmark.csv",
        "json": out / "benchmark.json",
        "markdown": out / "benchmark.md",
        "accuracy_by_cell": out / "accuracy_by_cell.png",
        "accuracy_vs_time": out / "accuracy_vs_time.png",
        "accuracy_vs_speed": out / "accuracy_vs_speed.png",
        "per_class_f1": out / "per_class_f1.png",
    }
    with atomic_path(paths["csv"]) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(paths["json"]) as tmp:
        tmp.write_text(json.dumps({**meta, "cells": records}, indent=2, default=str) + "\n")
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(f"Command: `{meta.get('command', '')}` ({meta.get('date', '')})\n\n" + markdown_table(frame) + "\n")
    plot_accuracy_by_cell(frame, paths["accuracy_by_cell"])
    plot_accuracy_vs_time(frame, paths["accuracy_vs_time"])
    plot_accuracy_vs_speed(frame, paths["accuracy_vs_speed"])
    plot_per_class_f1(records, paths["per_class_f1"])
    best = best_record(records)
    if best is not None and best.get("PrivateTest"):
        paths["confusion_best"] = plot_confusion_matrix(
            best["PrivateTest"]["confusion_matrix"],
            out / "confusion_best.png",
            title=f"best on PublicTest: {best['cell']}, PrivateTest (acc {best['PrivateTest']['accuracy']:.3f})",
        )
    return paths


def reading(records: list[dict]) -> list[str]:
    """Sentences that say what the numbers show, computed from them (for BENCHMARKS.md).

    Which single feature set carries the most signal, what fusion adds over the best of its
    parts and at what cost, how the heads compare, and where the CNN baseline stands. The
    best cell is chosen on PublicTest, as the protocol requires; PrivateTest is what is quoted.
    """
    out = []
    cells = [r for r in records if r["clf"] != "cnn" and r.get("PrivateTest")]
    if not cells:
        return out
    acc = {(r["features"], r["clf"]): r["PrivateTest"]["accuracy"] for r in cells}
    fit = {(r["features"], r["clf"]): r.get("fit_seconds") or float("nan") for r in cells}
    clfs = list(dict.fromkeys(r["clf"] for r in cells))
    singles = [f for f in dict.fromkeys(r["features"] for r in cells) if "+" not in f]
    for clf in clfs:
        ranked = sorted((acc[(f, clf)], f) for f in singles if (f, clf) in acc)[::-1]
        if ranked:
            out.append(
                f"With `{clf}`, the single feature sets rank "
                + ", ".join(f"{f} {a:.4f}" for a, f in ranked)
                + " (PrivateTest accuracy)."
            )
    unions = [f for f in dict.fromkeys(r["features"] for r in cells) if "+" in f]
    for union in unions:
        parts = []
        for clf in clfs:
            members = [p for p in union.split("+") if (p, clf) in acc]
            if (union, clf) not in acc or not members:
                continue
            best_part = max(members, key=lambda p: acc[(p, clf)])
            gain = acc[(union, clf)] - acc[(best_part, clf)]
            ratio = fit[(union, clf)] / fit[(best_part, clf)] if fit[(best_part, clf)] else float("nan")
            parts.append(f"{gain * 100:+.1f} with {clf} (vs {best_part}; fit ×{ratio:.1f})")
        if parts:
            out.append(f"Fusing `{union}` changes accuracy over its best single part by " + ", ".join(parts) + " points.")
    by_clf = {clf: np.mean([acc[k] for k in acc if k[1] == clf]) for clf in clfs}
    if len(by_clf) > 1:
        out.append(
            "Averaged over feature sets, the heads score "
            + ", ".join(f"{c} {v:.4f}" for c, v in sorted(by_clf.items(), key=lambda kv: -kv[1]))
            + "."
        )
    best = best_record(cells)
    if best is not None:
        out.append(
            f"Chosen on PublicTest ({best['PublicTest']['accuracy']:.4f}), the best pipeline is `{best['cell']}`: "
            f"PrivateTest accuracy {best['PrivateTest']['accuracy']:.4f}, macro-F1 {best['PrivateTest']['macro_f1']:.4f}."
        )
        f1 = best["PrivateTest"]["f1"]
        worst, easiest = min(f1, key=f1.get), max(f1, key=f1.get)
        out.append(f"Its hardest emotion is {worst} (F1 {f1[worst]:.2f}), its easiest {easiest} (F1 {f1[easiest]:.2f}).")
    base = next((r for r in records if r["clf"] == "cnn" and r.get("PrivateTest")), None)
    if base is not None and best is not None:
        diff = best["PrivateTest"]["accuracy"] - base["PrivateTest"]["accuracy"]
        tta = base.get("PrivateTest+TTA", {}).get("accuracy")
        tta10 = base.get("PrivateTest+TTA10", {}).get("accuracy")
        out.append(
            f"The CNN trained end to end scores {base['PrivateTest']['accuracy']:.4f}"
            + (f" ({tta:.4f} with flip TTA" if tta is not None else "")
            + (f", {tta10:.4f} with ten-crop TTA" if tta is not None and tta10 is not None else "")
            + (")" if tta is not None else "")
            + f"; the best pipeline is {diff * 100:+.1f} points from it."
        )
    return out


def _load_range(records: list[dict]) -> str:
    """``'; load average 2.1-4.4 as cells ended'`` from the records' machine info (a busy machine
    shows here: more than the cell workers were running)."""
    loads = [r["machine"]["load_average_1min"] for r in records if "load_average_1min" in r.get("machine", {})]
    return f"; 1-min load average {min(loads):.1f}–{max(loads):.1f} as its cells ended" if loads else ""


def write_benchmarks_md(
    records: list[dict], meta: dict, path: str | Path, results: dict[str, Path], *, section: str | None = None
) -> Path:
    """Write the project's BENCHMARKS.md: command, machine, date, table, plots and reading.

    Parameters
    ----------
    records, meta
        As in :func:`write_results`.
    path : str or Path
        Target Markdown file (written atomically).
    results : dict of {str: Path}
        The files :func:`write_results` wrote; the plots are linked relative to ``path``.
    section : str, optional
        Write the report as one section of ``path`` instead of the whole file: headed ``##
        section`` (its own headings one level down), between the lines ``<!-- section:NAME:start
        -->`` and ``<!-- section:NAME:end -->``, which replace an earlier version of the same section;
        a new section is appended. The rest of the file is kept as it was. A second grid (another
        data set, e.g. FERPlus) thus lives in the same BENCHMARKS.md as the first. Without
        ``section`` the file is rewritten and the sections it had are kept at its end.
    """
    import os

    path = Path(path)
    frame = results_frame(records)
    machine = meta.get("machine", {})
    data = meta.get("data", {})
    counts = data.get("counts", {})
    rel = {k: os.path.relpath(v, path.parent) for k, v in results.items()}
    runs: dict[float, list[dict]] = {}
    for r in records:
        if "run_started_epoch" in r:
            runs.setdefault(r["run_started_epoch"], []).append(r)
    run_lines = [
        f"  - started {time.strftime('%Y-%m-%d %H:%M:%S %Z', time.localtime(started))}: {len(rs)} cells "
        f"computed in {max(r['run_seconds_so_far'] for r in rs):,.0f} s from the start of extraction to its last cell "
        f"({rs[0].get('workers', '?')} cells at once, {rs[0].get('backend', 'local')} backend)" + _load_range(rs)
        for started, rs in sorted(runs.items())
    ]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `fer benchmark` from its results; every number and sentence below is computed, none typed.",
        "",
        f"- Command: `{meta.get('command', '')}`",
        f"- Report written: {meta.get('date', '')} by a run of {meta.get('wall_seconds', float('nan')):.0f} s "
        f"({meta.get('cells_computed', 0)} cells computed, {meta.get('cells_cached', 0)} from the cache)",
        "- Computed by:",
        *run_lines,
        f"- Machine: {machine.get('cpu_count')} CPU cores ({machine.get('processor', '')}), {machine.get('platform', '')}"
        + (f", GPU {machine['gpu']}" if machine.get("gpu") else ", no GPU")
        + (f"; load average {machine['load_average_1min']} at the start" if "load_average_1min" in machine else ""),
        f"- Data: `{data.get('source', '')}` (fingerprint {str(data.get('fingerprint', ''))[:12]}), "
        + ", ".join(f"{u} {sum(c.values()):,}" for u, c in counts.items()),
        f"- Settings: {meta.get('settings_text', '')}",
        "- Libraries: " + ", ".join(f"{k} {v}" for k, v in meta.get("library_versions", {}).items()),
        "",
        "## What the numbers say",
        "",
        *[f"- {s}" for s in reading(records)],
        "",
        "## Results",
        "",
        "Accuracy and macro-F1 on PublicTest (selection) and PrivateTest (report); *extract img/s*: the cell's "
        "extractors over every image, one after the other; *fit s*: scaling + PCA + classifier on the cached "
        "Training features (CNN: its training time, from the checkpoint); *predict img/s*: the fitted head on "
        "cached PrivateTest features; *end-to-end img/s*: extraction and prediction together; *peak MiB*: resident "
        "memory of the process that ran the cell.",
        "",
        markdown_table(frame),
        "",
    ]
    for key, title in (
        ("accuracy_by_cell", "Accuracy by feature set and classifier"),
        ("accuracy_vs_time", "Accuracy against fit time"),
        ("accuracy_vs_speed", "Accuracy against predict speed"),
        ("per_class_f1", "PrivateTest F1 per emotion"),
        ("confusion_best", "Confusion matrix of the cell chosen on PublicTest"),
    ):
        if key in rel:
            lines += [f"### {title}", "", f"![{title}]({rel[key]})", ""]
    lines += [f"Files: {', '.join(f'[{Path(v).name}]({v})' for k, v in rel.items() if k in ('csv', 'json', 'markdown'))}.", ""]
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if section is not None:
        text = splice_section(old, section, lines)
    else:  # the whole file, and after it the sections it had
        kept = [match.group(0) for match in SECTION_BLOCK.finditer(old)]
        text = "\n".join([*lines[:-1], *("\n" + block for block in kept), ""])
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


#: One section written by ``write_benchmarks_md(..., section=NAME)``, markers included.
SECTION_BLOCK = re.compile(r"<!-- section:(?P<name>[^\n]*?):start -->.*?<!-- section:(?P=name):end -->", re.S)


def splice_section(text: str, section: str, lines: list[str]) -> str:
    """``text`` with the report ``lines`` as its section ``section`` (see :func:`write_benchmarks_md`).

    Raises
    ------
    ValueError
        If ``section`` is empty or holds a line break, or ``text`` has the section's start
        marker without its end marker (or the other way round).
    """
    if not section.strip() or "\n" in section or "--" in section:
        raise ValueError(f"report section {section!r}: give a one-line name without '--'")
    start, end = f"<!-- section:{section}:start -->", f"<!-- section:{section}:end -->"
    body = [f"## {section}" if i == 0 else ("#" + line if line.startswith("#") else line) for i, line in enumerate(lines)]
    block = "\n".join([start, *body, end])
    has_start, has_end = start in text, end in text
    if has_start != has_end:
        raise ValueError(f"report section {section!r}: the file has one of {start} and {end} but not the other")
    if has_start:
        before, rest = text.split(start, 1)
        return before + block + rest.split(end, 1)[1]
    return (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
