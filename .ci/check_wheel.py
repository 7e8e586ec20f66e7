"""The installed wheel works as a user gets it: ``fer predict`` and ``Recognizer()`` on a photo, from outside the repository.

Run by ``make check-wheel`` with the python of a fresh venv into which only the built wheel (and
its declared dependencies) was installed, in a folder outside the checkout::

    cd /tmp/fer-wheel-venv && ./bin/python /path/to/repo/.ci/check_wheel.py astronaut.png

It fails (exit 1, saying why) if the package is imported from the checkout, if either path needs
a file of the checkout (FER2013, ``models/``), or if skimage's astronaut is not found happy by
both bundled models.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"check_wheel: FAILED: {message}")


def main(photo: str) -> None:
    import fer_features
    from fer_features import Recognizer

    where = Path(fer_features.__file__).resolve()
    check(REPO not in where.parents, f"fer_features was imported from the checkout ({where}), not the installed wheel")
    check(not Path.cwd().resolve().is_relative_to(REPO), f"run it from a folder outside the repository, not {Path.cwd()}")

    fer = Path(sys.executable).parent / "fer"
    proc = subprocess.run([str(fer), "predict", photo, "--json"], capture_output=True, text=True)
    check(proc.returncode == 0, f"`fer predict {photo}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    faces = json.loads(proc.stdout)[0]["faces"]
    check(len(faces) == 1 and faces[0]["label"] == "happy", f"`fer predict {photo}` found {faces}, not one happy face")
    print(f"fer predict {photo}: {faces[0]['label']} {faces[0]['probabilities']['happy']:.2f} ({proc.stderr.strip()})")

    for name in (None, "accurate"):
        frame = Recognizer(name).predict(photo)
        check(list(frame["label"]) == ["happy"], f"Recognizer({name!r}).predict({photo!r}) gave labels {list(frame['label'])}")
        print(f"Recognizer({name!r}).predict: {frame['label'][0]} {frame['p_happy'][0]:.2f}")

    proc = subprocess.run([str(fer), "models", "--json"], capture_output=True, text=True)
    check(proc.returncode == 0, f"`fer models` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    listed = {row["name"]: row for row in json.loads(proc.stdout) if row["source"] == "bundled"}
    check(set(listed) == {"default", "accurate"}, f"`fer models` lists bundled models {sorted(listed)}")
    check(all(row["accuracy"] for row in listed.values()), "a bundled model's card has no PrivateTest accuracy")
    print("fer models:", ", ".join(f"{n} {r['accuracy']:.4f}" for n, r in listed.items()))
    print(f"check_wheel: ok ({where.parent})")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "astronaut.png")
