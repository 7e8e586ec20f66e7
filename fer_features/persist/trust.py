"""Which types a skops model file may hold: the trust list derived from the registries, and skops imported without torch."""

from __future__ import annotations

#: Where the project's types lived in model files saved before the package was split into
#: sub-packages (fer-features 0.2.0): old fully qualified name → today's. :func:`current_type_paths`
#: renames them when a file is read, so those files keep loading (and are checked against
#: :func:`trusted_types` under today's names).
OLD_TYPE_PATHS: dict[str, str] = {
    "fer_features.cnn.estimators.CNNEmbedding": "fer_features.features.cnn.CNNEmbedding",
    "fer_features.cnn.estimators.CNNClassifier": "fer_features.cnn.classifier.CNNClassifier",
    "fer_features.cnn.estimators.CNNEnsembleClassifier": "fer_features.cnn.ensemble.CNNEnsembleClassifier",
    "fer_features.heads.NystroemClassifier": "fer_features.heads.estimators.NystroemClassifier",
    "fer_features.heads.MLPHead": "fer_features.heads.estimators.MLPHead",
    "fer_features.heads.LocalSVMClassifier": "fer_features.heads.estimators.LocalSVMClassifier",
    "fer_features.heads.BranchUnion": "fer_features.heads.estimators.BranchUnion",
    "fer_features.kernels.HistogramKernelMap": "fer_features.heads.kernels.HistogramKernelMap",
}


def trusted_types() -> frozenset[str]:
    """Every type :func:`load_model` builds from a skops file beyond what skops trusts by itself.

    Derived from the registries, never written by hand: the project types and other libraries'
    types that each registered feature extractor (:data:`fer_features.features.FEATURES`) and
    classifier head (:data:`fer_features.heads.registry.HEADS`) holds when fitted, and those of
    probability calibration (``fer train --calibrate``). A head registered with its types is
    trusted at once, so ``fer train`` never writes a file that ``fer predict`` refuses.

    Returns
    -------
    frozenset of str
        Fully qualified type names.
    """
    from fer_features.features import FEATURES
    from fer_features.heads.registry import CALIBRATION_TYPES, HEADS

    return HEADS.types(library=True) | FEATURES.types(library=True) | frozenset(CALIBRATION_TYPES)


def skops_io():
    """:mod:`skops.io`, imported without importing torch.

    Importing skops walks every scikit-learn module to list the estimators it trusts, and one of
    them (``sklearn.externals.array_api_compat.torch``) imports torch when it is installed: ~2 s
    and several hundred MB for a pipeline that has no CNN. While skops is first imported, torch
    is hidden, so that module is skipped (the walk ignores modules that fail to import); a later
    ``import torch`` is unaffected.

    Returns
    -------
    module
        :mod:`skops.io`.
    """
    import importlib.abc
    import sys

    if "skops.io" in sys.modules or "torch" in sys.modules:
        import skops.io

        return skops.io

    class _HideTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (hidden while skops is imported)", name=name)
            return None

    hider = _HideTorch()
    sys.meta_path.insert(0, hider)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(hider)
        for name in [n for n in sys.modules if n.startswith("sklearn.externals.array_api_compat.torch")]:
            del sys.modules[name]  # a half-imported stub would shadow the real one later
    return skops.io


def current_type_paths(data: bytes) -> bytes:
    """A skops file's bytes with the type paths of :data:`OLD_TYPE_PATHS` renamed to today's.

    skops names each object's type by module and class in the zip's ``schema.json`` and imports
    that module when loading; a file saved before the move names modules that are gone.

    Parameters
    ----------
    data : bytes
        A skops file.

    Returns
    -------
    bytes
        ``data`` itself when it names no old path, else the same zip with ``schema.json`` rewritten.
    """
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        schema = json.loads(zf.read("schema.json"))
        renamed = [0]

        def rename(node):
            if isinstance(node, dict):
                old = f"{node.get('__module__')}.{node.get('__class__')}"
                if old in OLD_TYPE_PATHS:
                    node["__module__"], _, node["__class__"] = OLD_TYPE_PATHS[old].rpartition(".")
                    renamed[0] += 1
                for value in node.values():
                    rename(value)
            elif isinstance(node, list):
                for value in node:
                    rename(value)

        rename(schema)
        if not renamed[0]:
            return data
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as new:
            for info in zf.infolist():
                content = json.dumps(schema).encode() if info.filename == "schema.json" else zf.read(info)
                new.writestr(info.filename, content, compress_type=zipfile.ZIP_STORED if info.filename != "schema.json" else zipfile.ZIP_DEFLATED)
    return out.getvalue()
