import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
from sklearn.svm import LinearSVC
k = 4096
for pyr in [(1, 2, 3, 4), (2, 4), (1, 2, 4, 6)]:
    F = hist(k, pyr, "presence"); run(f"k{k} presence {pyr}", F, Cs=(0.1, 0.3))
F = hist(k, (1, 2, 4), "sqrt"); run(f"k{k} sqrt 124", F, Cs=(0.1, 0.3))
F = hist(k, (1, 2, 4), "presence"); Ff = hist(k, (1, 2, 4), "presence", flip=True)
Ftr = sp.vstack([F[TR], Ff[TR]]).tocsr(); ytr = np.concatenate([y[TR], y[TR]])
for C in (0.1, 0.3):
    m = LinearSVC(C=C, max_iter=3000).fit(Ftr, ytr)
    d = m.decision_function(F[PU]); df = m.decision_function(Ff[PU])
    print("aug C", C, (d.argmax(1) == y[PU]).mean(), "tta", ((d + df).argmax(1) == y[PU]).mean(), flush=True)
