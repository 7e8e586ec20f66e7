import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")  # intermediate arrays (words, features); run from the repository root
os.makedirs(WORK, exist_ok=True)
import time, numpy as np
from fer_features.datasets import load_fer2013
from fer_features.features import make_features
t0 = time.time()
d = load_fer2013("../shared/data/fer2013.csv.gz")
X = d.X
out = {}
for name in ("hog", "lbp", "landmarks"):
    u = make_features(name, n_jobs=1).fit(X[:100])
    out[name] = u.transform(X).astype(np.float32)
    out[name + "_flip"] = u.transform(np.ascontiguousarray(X[:, :, ::-1])).astype(np.float32)
    print(name, out[name].shape, round(time.time() - t0), flush=True)
np.savez(os.path.join(WORK, "feats.npz"), **out)
print("done", round(time.time() - t0), flush=True)
