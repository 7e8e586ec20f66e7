import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
from sklearn.svm import LinearSVC, SVC
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
H, Hf = handcrafted(), handcrafted(flip=True)
ev = np.concatenate([PU, PR])
t = time.time()
m = make_pipeline(StandardScaler(), PCA(256, random_state=0), SVC(C=10, gamma="scale", cache_size=2000)).fit(H[TR], y[TR])
print("svc fit", round(time.time() - t), flush=True)
dh = m.decision_function(H[ev]); dhf = m.decision_function(Hf[ev])
print("hlf svc PU", (dh[:len(PU)].argmax(1) == y[PU]).mean(), "tta", ((dh + dhf)[:len(PU)].argmax(1) == y[PU]).mean(), round(time.time() - t), flush=True)
k = 4096
F = hist(k, (1, 2, 3, 4), "presence"); Ff = hist(k, (1, 2, 3, 4), "presence", flip=True)
Ftr = sp.vstack([F[TR], Ff[TR]]).tocsr(); ytr = np.concatenate([y[TR], y[TR]])
b = LinearSVC(C=0.2, max_iter=3000).fit(Ftr, ytr)
db = b.decision_function(F[ev]); dbf = b.decision_function(Ff[ev])
print("bovw PU", (db[:len(PU)].argmax(1) == y[PU]).mean(), "tta", ((db + dbf)[:len(PU)].argmax(1) == y[PU]).mean(), flush=True)
np.savez(os.path.join(WORK, "dec.npz"), dh=dh, dhf=dhf, db=db, dbf=dbf, ev=ev)
