import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
k = 4096
for pyr in [(1, 2), (1, 3), (2,), (1, 2, 3)]:
    F = hist(k, pyr, "presence"); run(f"k{k} presence {pyr} dims {F.shape[1]}", F, Cs=(0.1, 0.3))
