"""RBF kernels (gamma 'scale', as SVC) of standardised + PCA-256 feature sets: rbf_kernels.py hog+lbp+landmarks hog lbp landmarks"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
t0 = time.time()
for spec in sys.argv[1:]:
    Z = standardised_pca(spec.split("+")); Ztr = Z[TR]; g = 1.0 / (Z.shape[1] * Ztr.var())
    G = np.lib.format.open_memmap(path(spec.replace("+", "_"), "tr"), mode="w+", dtype=np.float32, shape=(len(TR), len(TR)))
    for a in range(0, len(TR), 2000):
        G[a:a + 2000] = rbf(Ztr[a:a + 2000], Ztr, g)
    G.flush()
    np.save(path(spec.replace("+", "_"), "te"), rbf(Z[TE], Ztr, g).astype(np.float32))
    print(spec, clock(t0), flush=True)
