import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
t = time.time()
for k in (1024, 4096):
    F = hist(k, (1, 2, 4), "presence"); print("built", k, F.shape, F.nnz / F.shape[0], round(time.time() - t), flush=True)
    run(f"k{k} presence 124", F, Cs=(0.03, 0.1, 0.3))
