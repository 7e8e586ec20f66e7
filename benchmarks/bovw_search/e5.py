import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")
os.makedirs(WORK, exist_ok=True)
import sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *
from sklearn.svm import LinearSVC
k = 4096
F = hist(k, (1, 2, 3, 4), "presence")
rng = np.random.default_rng(0); sub = np.sort(rng.choice(PU, 600, replace=False))
t = time.time()
S = (F[sub] @ F[TR].T).toarray()
print("sims", S.shape, round(time.time() - t), flush=True)
g = LinearSVC(C=0.2, max_iter=3000).fit(F[TR], y[TR])
dg = g.decision_function(F[sub])
print("global", (dg.argmax(1) == y[sub]).mean(), flush=True)
ytr = y[TR]
for kn in (300, 1000, 3000):
    t = time.time(); pred = []; dl = []
    for i in range(len(sub)):
        nb = np.argpartition(-S[i], kn)[:kn]
        yy = ytr[nb]
        if len(np.unique(yy)) == 1: pred.append(yy[0]); continue
        m = LinearSVC(C=0.2, max_iter=2000).fit(F[TR[nb]], yy)
        pred.append(m.predict(F[sub[i]])[0])
    print("local", kn, (np.array(pred) == y[sub]).mean(), round(time.time() - t), flush=True)
    # knn vote
    nbs = np.argpartition(-S, kn, axis=1)[:, :kn]
