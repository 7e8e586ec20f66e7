"""BranchUnion: a stack's branches fitted side by side in threads, one fold at a time, to the same model."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import StackingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC
from threadpoolctl import threadpool_info, threadpool_limits

from fer_features.heads.estimators import BranchUnion

#: (branch tag, rows, start, end, BLAS threads) of every Recorder fit, in the order they ended.
FITS: list[tuple[str, int, float, float, list[int]]] = []
#: Recorders with ``meet=True`` wait here for each other: it breaks unless two fit at the same time.
MEET = threading.Barrier(2)


class Recorder(ClassifierMixin, BaseEstimator):
    """A branch that notes when, on how many rows and with how many BLAS threads it was fitted."""

    def __init__(self, *, tag="a", seconds=0.1, meet=False):
        self.tag = tag
        self.seconds = seconds
        self.meet = meet

    def fit(self, X, y):
        start = time.perf_counter()
        blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
        if self.meet:
            MEET.wait(timeout=10)
        time.sleep(self.seconds)
        FITS.append((self.tag, len(X), start, time.perf_counter(), blas))
        self.classes_ = np.unique(y)
        return self

    def decision_function(self, X):
        return np.asarray(X)[:, : len(self.classes_)]

    def predict(self, X):
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]


def data(n=60, d=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(["angry", "happy", "sad"], n // 3)
    X = rng.standard_normal((n, d)) + (y[:, None] == "happy") * 1.5
    return X.astype(np.float32), y


def stack(union):
    """The stacked head's shape: one fold at a time, the union inside."""
    return StackingClassifier([("branches", union)], LogisticRegression(), cv=3, stack_method="decision_function",
                              n_jobs=1)


@pytest.fixture(autouse=True)
def fresh_log():
    FITS.clear()
    MEET.reset()


def test_branches_fit_together_one_fold_at_a_time():
    X, y = data()
    union = BranchUnion([("a", Recorder(tag="a", meet=True)), ("b", Recorder(tag="b", meet=True))], n_jobs=2)
    with threadpool_limits(limits=2, user_api="blas"):
        stack(union).fit(X, y)  # the barrier breaks at the first fit whose partner does not run beside it
    assert sorted((tag, n) for tag, n, *_ in FITS) == [("a", 40)] * 3 + [("a", 60)] + [("b", 40)] * 3 + [("b", 60)]
    starts = sorted(start for _, _, start, _, _ in FITS)
    for _, _, start, end, _ in FITS:  # never more than the two fits of one fold (or of the refit) at once
        assert sum(s < end for s in starts if s >= start) <= 2
    for tag in "ab":
        spans = sorted((start, end) for t, _, start, end, _ in FITS if t == tag)
        assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), f"branch {tag}: fits overlapped"
    # two branches on two BLAS threads: one thread each while they run
    assert all(blas and max(blas) == 1 for *_, blas in FITS)


def test_one_after_another_without_n_jobs():
    X, y = data()
    union = BranchUnion([("a", Recorder(tag="a")), ("b", Recorder(tag="b"))])
    with threadpool_limits(limits=2, user_api="blas"):
        stack(union).fit(X, y)
    spans = sorted((start, end) for _, _, start, end, _ in FITS)
    assert len(spans) == 8
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:]))
    assert all(max(blas) == 2 for *_, blas in FITS)  # BLAS left as it was


@pytest.mark.parametrize("n_jobs", [2, -1])
def test_stacked_head_predicts_as_a_stacking_of_the_branches(n_jobs):
    """The head's real branches (scaled PCA + RBF SVC, logistic regression) in the union or not: the same model."""
    from fer_features.training.pipelines import build_head

    X, y = data(n=90, d=50)
    head = build_head("stacked-svm", block_names=["hog", "sift-fisher"], block_sizes=[20, 30], pca=5, n_jobs=n_jobs)
    head = head.named_steps["clf"]
    union = head.estimators[0][1]
    assert isinstance(union, BranchUnion) and union.n_jobs == n_jobs
    plain = StackingClassifier(union.estimators, head.final_estimator, cv=head.cv, stack_method=head.stack_method)
    plain.fit(X, y)
    head.fit(X, y)
    np.testing.assert_array_equal(head.predict(X), plain.predict(X))
    np.testing.assert_allclose(head.predict_proba(X), plain.predict_proba(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(head.transform(X), plain.transform(X), rtol=1e-5, atol=1e-5)


def test_decision_function_puts_the_branches_side_by_side():
    X, y = data()
    union = BranchUnion([("ovo", SVC(decision_function_shape="ovo")), ("lr", LogisticRegression())], n_jobs=2).fit(X, y)
    ovo, lr = union.named_estimators_["ovo"], union.named_estimators_["lr"]
    side_by_side = np.hstack([ovo.decision_function(X), lr.decision_function(X)])
    np.testing.assert_array_equal(union.decision_function(X), side_by_side)
    two = y != "sad"  # binary: each branch gives one column
    binary = clone(union).fit(X[two], y[two])
    assert binary.decision_function(X).shape == (len(X), 2)
    assert set(union.predict(X)) <= set(y)


def test_estimator_contract():
    X, y = data()
    union = BranchUnion([("lr", LogisticRegression(C=0.5)), ("svm", SVC())], n_jobs=2)
    assert union.get_params()["lr__C"] == 0.5
    assert clone(union).set_params(lr__C=2.0).estimators[0][1].C == 2.0
    with pytest.raises(NotFittedError):
        union.decision_function(X)
    fitted = clone(union).fit(X, y)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.decision_function(X), fitted.decision_function(X))
    with pytest.raises(ValueError, match="n_jobs"):
        clone(union).set_params(n_jobs="two").fit(X, y)
