"""Two more hand-crafted RBF components for kernel_sum.py: hog with 4-pixel cells (hog4) and lbp with radius 2 and 16 points (lbp2)."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
from fer_features.features import make_features
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
t0 = time.time()
for tag, name, params in (("hog4", "hog", {"pixels_per_cell": (4, 4)}), ("lbp2", "lbp", {"radius": 2, "n_points": 16})):
    H = make_features(name, n_jobs=2, params={name: params}).fit(d.X[:100]).transform(d.X).astype(np.float32)
    H = StandardScaler().fit(H[TR]).transform(H)
    Z = PCA(256, random_state=0).fit(H[TR]).transform(H).astype(np.float32); Ztr = Z[TR]; g = 1.0 / (256 * Ztr.var())
    G = np.lib.format.open_memmap(path(tag, "tr"), mode="w+", dtype=np.float32, shape=(len(TR), len(TR)))
    for a in range(0, len(TR), 2000): G[a:a + 2000] = rbf(Ztr[a:a + 2000], Ztr, g)
    G.flush(); np.save(path(tag, "te"), rbf(Z[TE], Ztr, g).astype(np.float32))
    print(tag, H.shape, clock(t0), flush=True)
