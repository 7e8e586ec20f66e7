"""``fer train --features hog --clf svm`` runs without importing torch: a pipeline without a CNN
needs none (torch's import alone costs seconds and hundreds of MB)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from fer_features.cli import main
sys.argv = ["fer", "train", "--data", sys.argv[1], "--features", "hog", "--clf", "svm", "--n-jobs", "1",
            "--out", sys.argv[2]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "torch": "torch" in sys.modules}))
"""


def test_training_hog_svm_does_not_import_torch(make_fer, tmp_path):
    pytest.importorskip("torch")  # only meaningful where torch is installed
    data = make_fer(per_class=4)
    out = tmp_path / "m.skops"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data.zip), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["code"] in (0, None), run.stderr
    assert out.is_file()
    assert not result["torch"], "fer train --features hog --clf svm imported torch"
