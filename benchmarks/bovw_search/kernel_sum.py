"""A global SVC on a weighted sum of precomputed kernels, PublicTest accuracy.

kernel_sum.py "bovw:1,hog+lbp+landmarks:3;bovwexp3:1" 1,3   (configurations separated by ;, then the Cs)
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
from sklearn.svm import SVC
for spec in sys.argv[1].split(";"):
    K, Kt = kernel_sum(spec)
    for C in map(float, sys.argv[2].split(",")):
        t0 = time.time(); m = SVC(kernel="precomputed", C=C, cache_size=2000).fit(K, y[TR])
        print(f"{spec} C={C} PublicTest {np.mean(m.predict(Kt) == y[PU]):.4f} support vectors {m.n_support_.sum()} fit {clock(t0)}", flush=True)
