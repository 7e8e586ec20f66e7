import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")  # intermediate arrays (words, features); run from the repository root
os.makedirs(WORK, exist_ok=True)
import sys, time, numpy as np
from sklearn.cluster import MiniBatchKMeans
from fer_features.datasets import load_fer2013
from fer_features.features import SIFTBoVW
t0 = time.time()
ks = [int(k) for k in sys.argv[1].split(",")]
d = load_fer2013("../shared/data/fer2013.csv.gz")
X, y, usage = d.X, d.y, np.asarray(d.usage)
tr = np.flatnonzero(usage == "Training")
s = SIFTBoVW(); s.image_shape_ = (48, 48)
rng = np.random.default_rng(0)
sample = []
per = 14
for a in range(0, len(tr), 1024):
    desc, centres = s._descriptors(X[tr[a:a+1024]])
    picks = np.stack([rng.choice(desc.shape[1], per, replace=False) for _ in range(len(desc))])
    sample.append(np.take_along_axis(desc, picks[:, :, None], axis=1).reshape(-1, 128))
sample = np.concatenate(sample)
print("sample", sample.shape, round(time.time()-t0), flush=True)
voc = {}
for k in ks:
    km = MiniBatchKMeans(n_clusters=k, batch_size=max(4096, 2*k), n_init=1 if k > 1024 else 3, max_no_improvement=20, random_state=0).fit(sample)
    voc[k] = km.cluster_centers_.astype(np.float32)
    print("kmeans", k, km.inertia_/len(sample), round(time.time()-t0), flush=True)
np.savez(os.path.join(WORK, "vocab.npz"), **{f"v{k}": v for k, v in voc.items()}, centres=centres)
out = {f"w{k}": np.empty((len(X), desc.shape[1]), np.uint16) for k in ks}
outf = {f"w{k}": np.empty((len(X), desc.shape[1]), np.uint16) for k in ks}
c2 = {k: np.einsum("ij,ij->i", v, v) for k, v in voc.items()}
def assign(desc, k):
    flat = desc.reshape(-1, 128)
    o = np.empty(len(flat), np.uint16)
    for a in range(0, len(flat), 32768):
        o[a:a+32768] = np.argmin(c2[k][None] - 2 * flat[a:a+32768] @ voc[k].T, axis=1)
    return o.reshape(desc.shape[:2])
for a in range(0, len(X), 1024):
    for flip, dst in ((False, out), (True, outf)):
        img = X[a:a+1024][:, :, ::-1] if flip else X[a:a+1024]
        desc, _ = s._descriptors(np.ascontiguousarray(img))
        for k in ks:
            dst[f"w{k}"][a:a+1024] = assign(desc, k)
    if a % 8192 == 0: print("assign", a, round(time.time()-t0), flush=True)
np.savez(os.path.join(WORK, "words.npz"), y=y, usage=usage, centres=centres, **out)
np.savez(os.path.join(WORK, "words_flip.npz"), **outf)
print("done", round(time.time()-t0), flush=True)
