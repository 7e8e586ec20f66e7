"""Two more hand-crafted RBF components for kernel_sum.py: hog with 4-pixel cells (hog4) and lbp with radius 2 and 16 points (lbp2)."""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
from fer_features.features import make_features
t0 = time.time()
for tag, name, params in (("hog4", "hog", {"pixels_per_cell": (4, 4)}), ("lbp2", "lbp", {"radius": 2, "n_points": 16})):
    H = make_features(name, n_jobs=2, params={name: params}).fit(d.X[:100]).transform(d.X).astype(np.float32)
    save_rbf(tag, reduce(H)[0])
    print(tag, H.shape, clock(t0), flush=True)
