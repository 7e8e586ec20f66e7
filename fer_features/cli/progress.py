"""Rich displays of the library's progress events (``on_event(kind, info)``): spinners and bars."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fer_features.cli.consoles import console, err_console

COLUMNS = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


class Reporter:
    """``with Reporter() as report: train(..., on_event=report)``: what the library reports, drawn.

    Loading and scoring get a spinner, extraction a bar per extractor, the CNN a bar over
    epochs; ``message`` events are printed; ``evaluate-done`` prints the metrics table.
    """

    def __init__(self):
        self.status = None
        self.progress: Progress | None = None
        self.tasks: dict[str, int] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stop_status()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        return False

    def __call__(self, kind: str, info: dict) -> None:
        handler = getattr(self, "on_" + kind.replace("-", "_"), None)
        if handler is not None:
            handler(info)

    def _spin(self, text: str) -> None:
        self._stop_status()
        self.status = console.status(text)
        self.status.start()

    def _stop_status(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def on_load_start(self, info):
        self._spin(f"loading {info['path']}")

    def on_loaded(self, info):
        self._stop_status()
        data = info["dataset"]
        if data.skipped:
            name, problem = data.skipped[0]
            err_console.print(f"[yellow]skipped {len(data.skipped)} bad file(s)[/], e.g. {name}: {problem}")
        if hasattr(data, "summary"):  # a photo folder: faces found, photos left out
            err_console.print(data.summary(), highlight=False, soft_wrap=True)

    def on_message(self, info):
        console.print(info["text"])

    def on_fit_start(self, info):
        self.progress = Progress(*COLUMNS, console=err_console, transient=False)
        self.tasks = {}
        if info.get("epochs"):
            self.tasks["epochs"] = self.progress.add_task("CNN epochs", total=info["epochs"])
        self.progress.start()

    def on_extract(self, info):
        if info["name"] not in self.tasks:
            self.tasks[info["name"]] = self.progress.add_task(f"extract {info['name']}", total=info["total"])
        self.progress.update(self.tasks[info["name"]], completed=info["done"])

    def on_fit_head(self, info):
        self.tasks["head"] = self.progress.add_task("fit scaler, PCA and classifier", total=None)

    def on_epoch(self, record):
        description = f"CNN epochs (loss {record['loss']:.3f}, PublicTest acc {record['val_accuracy']:.4f})"
        self.progress.update(self.tasks["epochs"], completed=record["epoch"], description=description)

    def on_fit_done(self, info):
        if "head" in self.tasks:
            self.progress.update(self.tasks["head"], total=1, completed=1)
        self.progress.stop()
        self.progress = None

    def on_evaluate_start(self, info):
        self._spin("scoring " + " and ".join(info["splits"]))

    def on_evaluate_done(self, info):
        self._stop_status()
        console.print(metrics_table(info["metrics"], info["title"]))

    def on_cv_start(self, info):
        self._spin(info["text"])


def metrics_table(rows: dict[str, dict], title: str):
    """Images, accuracy and macro-F1 per split."""
    from rich.table import Table

    table = Table(title=title)
    for col in ("split", "images", "accuracy", "macro-F1"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for split, m in rows.items():
        table.add_row(split, str(m["n"]), f"{m['accuracy']:.4f}", f"{m['macro_f1']:.4f}")
    return table


class BenchmarkReporter(Reporter):
    """:class:`Reporter` plus the benchmark's bars: one per extraction, one over the cells."""

    def __init__(self):
        super().__init__()
        self.cells: Progress | None = None
        self.bars: dict[str, int] = {}

    def __exit__(self, *exc):
        self.on_cells_done({})
        return super().__exit__(*exc)

    def on_note(self, info):
        err_console.print(info["text"], highlight=False)

    def on_cells(self, info):
        self.cells = Progress(*COLUMNS, console=err_console)
        self.cells_task = self.cells.add_task("cells", total=info["total"])
        self.cells.start()

    def on_cells_done(self, info):
        if self.cells is not None:
            self.cells.stop()
            self.cells = None

    def on_extract_start(self, info):
        self.bars[info["name"]] = self.cells.add_task(f"extract {info['name']}", total=info["total"])

    def on_extract_progress(self, info):
        self.cells.update(self.bars[info["name"]], completed=info["done"])

    def on_extract_done(self, info):
        how = "cached" if info.get("cached") else f"{info['seconds']:.0f} s"
        self.cells.console.print(f"features {info['name']}: {info['dims']:,} dims, {info['img_per_s']:,.0f} img/s ({how})")

    def on_cell_done(self, info):
        acc = (info.get("PrivateTest") or {}).get("accuracy", float("nan"))
        how = "cached" if info.get("cached") else f"fit {info.get('fit_seconds', float('nan')):.0f} s"
        self.cells.console.print(f"{info['cell']}: PrivateTest accuracy {acc:.4f} ({how})", highlight=False)
        self.cells.advance(self.cells_task)
