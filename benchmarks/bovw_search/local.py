"""Local learning on a kernel sum (Ionescu et al. 2013; Georgescu et al. 2019): for each PublicTest
face, its k nearest Training faces by the kernel, an SVC on their precomputed kernel, one label.

local.py SPEC K C [N_SUB SEED]   e.g. local.py "bovw:1,hog+lbp+landmarks:4" 1000 1
(a random N_SUB of PublicTest with SEED, default all; SHARD=0|1 runs every other face)
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
from sklearn.svm import SVC
spec, k, C = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
n_sub = int(sys.argv[4]) if len(sys.argv) > 4 else len(PU)
rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 0)
rows = np.arange(len(PU)) if n_sub >= len(PU) else np.sort(rng.choice(len(PU), n_sub, replace=False))
if os.environ.get("SHARD"):
    rows = rows[int(os.environ["SHARD"])::2]
comps = [(component(name), w) for name, w in parse_spec(spec)]
Kt = sum(w * f(T[rows]) for (G, T, f), w in comps)
ytr = y[TR]
t0 = time.time(); pred = np.empty(len(rows), ytr.dtype)
for i in range(len(rows)):
    nb = np.sort(np.argpartition(-Kt[i], k)[:k])
    if len(np.unique(ytr[nb])) == 1:
        pred[i] = ytr[nb][0]; continue
    Kn = sum(w * f(G[np.ix_(nb, nb)]) for (G, T, f), w in comps)
    pred[i] = SVC(kernel="precomputed", C=C).fit(Kn, ytr[nb]).predict(Kt[i, nb][None])[0]
np.save(os.path.join(WORK, f"local_{os.environ.get('SHARD', 'all')}.npy"), np.stack([rows, pred]))
print(f"{spec} k={k} C={C} PublicTest faces {len(rows)}: {np.mean(pred == y[PU][rows]):.4f}, {(time.time() - t0) / len(rows) * 1000:.0f} ms a face, {clock(t0)}", flush=True)
