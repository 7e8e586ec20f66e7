"""RBF kernels (gamma 'scale', as SVC) of standardised + PCA-256 feature sets: rbf_kernels.py hog+lbp+landmarks hog lbp landmarks"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
t0 = time.time()
for spec in sys.argv[1:]:
    save_rbf(spec.replace("+", "_"), reduce(joined(spec.split("+")))[0])
    print(spec, clock(t0), flush=True)
