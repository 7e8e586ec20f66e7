"""``fer benchmark``: every feature set against the others on FER2013, reproducibly.

- :mod:`~fer_features.benchmark.grid`: which cells run (feature sets × heads, CNN baseline),
  from defaults, options or a TOML/YAML file;
- :mod:`~fer_features.benchmark.cache`: extracted features and finished cells on disk, keyed
  by data fingerprint and parameters;
- :mod:`~fer_features.benchmark.run`: extraction once per feature, cells in parallel (joblib:
  local processes or a Dask cluster);
- :mod:`~fer_features.benchmark.report`: CSV, JSON, Markdown, plots and BENCHMARKS.md.
"""

from fer_features.benchmark.cache import BenchmarkCache
from fer_features.benchmark.grid import DEFAULT_CLASSIFIERS, DEFAULT_FEATURE_SETS, Cell, Grid, load_grid
from fer_features.benchmark.report import results_frame, write_benchmarks_md, write_results
from fer_features.benchmark.run import run_benchmark

__all__ = [
    "DEFAULT_CLASSIFIERS",
    "DEFAULT_FEATURE_SETS",
    "BenchmarkCache",
    "Cell",
    "Grid",
    "load_grid",
    "results_frame",
    "run_benchmark",
    "write_benchmarks_md",
    "write_results",
]
