"""Module crossings of one ``fer`` command: which fer_features modules it passes through, and how often it moves between them.

The command runs in process under :func:`sys.setprofile`. A *crossing* is a call from a function of
one fer_features module straight into a function of another: what the command's own code does,
from the CLI to the result. Calls made by another library (scikit-learn running a pipeline's
steps, skops building a model) and everything under them are a model's internals, not the walk,
and calls made while a module is imported are left out. A call in a worker thread (a thread
pool's batch) is judged by the main thread's stack at that moment, from its innermost
fer_features frame (the call waiting for the batch) out: the batches of a model's forward pass
that scikit-learn runs are a model's internals too. The walk lists each distinct crossing
once, in the order first made (``caller → callee: function``); repeats are counted apart. ``docs/guide/architecture.md`` gives
the walks of ``fer predict photo.jpg`` and ``fer train --features hog+cnn --clf svm``, before
and after the package was split into sub-packages.

    python benchmarks/module_crossings.py -- predict astronaut.png --model default
    python benchmarks/module_crossings.py -- train --data ../shared/data/fer2013.csv.gz --limit 300 \\
        --features hog+cnn --clf svm --cnn-checkpoint models/cnn-small.pt --out /tmp/m.skops
    python benchmarks/module_crossings.py --json -- predict astronaut.png
    python benchmarks/module_crossings.py --rooms -- predict astronaut.png

``--rooms`` counts by *room*, a top-level module of fer_features or one of its sub-packages
(``faces.alignment`` and ``faces.images`` are the room ``faces``): a call inside a room is no
crossing, and calls of one function from the modules of one room into another count once.

Run it from the repository root of the checkout to measure (it imports that checkout's package).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path


def module_of(filename: str, root: Path) -> str | None:
    """``fer_features/faces/alignment.py`` → ``faces.alignment``; None outside the package."""
    try:
        rel = Path(filename).resolve().relative_to(root)
    except ValueError:
        return None
    parts = rel.with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__init__"


def trace(argv: list[str], *, rooms: bool = False) -> dict:
    """Run ``fer ARGV`` and return its crossings, by module or (``rooms``) by room."""
    import fer_features

    root = Path(fer_features.__file__).resolve().parent
    known: dict[str, str | None] = {}
    walk: dict[tuple[str, str, str], int] = {}
    lock = threading.Lock()

    def mod(code) -> str | None:
        name = code.co_filename
        if name not in known:
            known[name] = module_of(name, root)
        return known[name]

    def under_library(back) -> bool:
        """Whether ``back`` (a frame) runs under another library's call, or while a module is imported."""
        seen_library = False
        while back is not None:  # inside a model's method, run by another library: not the command's own walk
            if back.f_code.co_filename.startswith("<"):
                back = back.f_back
                continue
            inside = mod(back.f_code) is not None
            if inside and (seen_library or back.f_code.co_name == "<module>"):
                return True  # under another library's call, or while a module is being imported
            seen_library = seen_library or not inside
            back = back.f_back
        return False

    def waiting_frame(top):
        """The main thread's innermost fer_features frame: the call that waits for a worker thread's part."""
        while top is not None and mod(top.f_code) is None:
            top = top.f_back
        return top

    main = threading.main_thread().ident

    def profile(frame, event, arg):
        if event != "call" or frame.f_code.co_name in ("<module>", "__getattr__"):
            return  # imports, and the lazy attribute hooks of PEP 562 (import machinery)
        callee = mod(frame.f_code)
        if callee is None:
            return
        back = frame.f_back
        while back is not None and back.f_code.co_filename.startswith("<"):
            back = back.f_back  # generated code (a dataclass's __init__): its caller made the call
        caller = mod(back.f_code) if back is not None else None
        if caller is None or caller == callee or back.f_code.co_name == "<module>":
            return  # called by another library (a model's internals, run by scikit-learn or skops), or at import
        if under_library(back):
            return
        if threading.get_ident() != main and under_library(waiting_frame(sys._current_frames().get(main))):
            return  # a worker thread's part of a call that the main thread made under another library
        key = (caller, callee, frame.f_code.co_name)
        with lock:
            walk[key] = walk.get(key, 0) + 1

    from fer_features.cli import app

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        app(argv, prog_name="fer", standalone_mode=False)
    except SystemExit:
        pass
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return summary(argv, by_room(walk) if rooms else walk)


def room_of(module: str) -> str:
    """``faces.alignment`` → ``faces``: the top-level module or sub-package a module belongs to."""
    return module.partition(".")[0]


def by_room(walk: dict[tuple[str, str, str], int]) -> dict[tuple[str, str, str], int]:
    """The crossings between rooms (:func:`room_of`), each distinct one once, in the order first made."""
    rooms: dict[tuple[str, str, str], int] = {}
    for (caller, callee, function), n in walk.items():
        a, b = room_of(caller), room_of(callee)
        if a != b:
            rooms[(a, b, function)] = rooms.get((a, b, function), 0) + n
    return rooms


def summary(argv: list[str], walk: dict[tuple[str, str, str], int]) -> dict:
    """The walk as JSON-ready data: modules in order of appearance, the crossings and their counts."""
    modules = []
    for caller, callee, _ in walk:
        for m in (caller, callee):
            if m not in modules:
                modules.append(m)
    return {
        "command": "fer " + " ".join(argv),
        "modules": modules,
        "crossings": [{"from": a, "to": b, "function": f, "times": n} for (a, b, f), n in walk.items()],
        "distinct_crossings": len(walk),
        "all_crossings": sum(walk.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--rooms", action="store_true", help="count by room (top-level module or sub-package), not by module")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="the fer command's arguments, after --")
    args = parser.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    os.environ.setdefault("PYTHONHASHSEED", "0")
    result = trace(argv, rooms=args.rooms)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    unit = "rooms" if args.rooms else "modules"
    print(f"{result['command']}: {len(result['modules'])} {unit}, {result['distinct_crossings']} distinct crossings "
          f"({result['all_crossings']} in all)")
    for i, c in enumerate(result["crossings"], 1):
        times = f"  (x{c['times']})" if c["times"] > 1 else ""
        print(f"{i:3d}. {c['from']} → {c['to']}: {c['function']}{times}")


if __name__ == "__main__":
    main()
