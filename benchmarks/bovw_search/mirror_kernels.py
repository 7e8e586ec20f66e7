"""Kernels between each face and the other face's mirror image, symmetrised:
k_mirror(x, y) = (k(x, mirror(y)) + k(mirror(x), y)) / 2, for the bag of words (linear) and for
hog+lbp+landmarks (the RBF of rbf_kernels.py, on the same standardisation and PCA). Saved as the
components 'bovw-mirror' and 'hog_lbp_landmarks-mirror' of kernel_sum.py.

mirror_kernels.py features     the words of every mirror image (the vocabulary refitted on
                               Training: the same seed gives the same words) and their hog, lbp,
                               landmarks (636 s with 2 processes)
mirror_kernels.py cross SHARD  half of the Training x mirrored-Training dot products (SHARD 0 and
                               1 at once: 210 s each); run `mirror_kernels.py init` first
mirror_kernels.py rest         symmetrise, the PublicTest + PrivateTest rows, the RBF part (296 s)
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_lib import *
t0 = time.time(); step = sys.argv[1]; n = len(TR)
mirror = lambda X: np.ascontiguousarray(X[:, :, ::-1])
if step == "features":
    from fer_features.features import SIFTBoVW, make_features
    s = SIFTBoVW(**PARAMS["sift-bovw"], n_jobs=2).fit(d.X[TR])
    assert abs(s.transform(d.X[TR[:200]]) - bovw()[TR[:200]]).max() == 0, "not the cached vocabulary"
    sp.save_npz(os.path.join(WORK, "bovw_mirror.npz"), sp.csr_matrix(s.transform(mirror(d.X)), dtype=np.float32))
    out = {name: make_features(name, n_jobs=2).fit(d.X[:100]).transform(mirror(d.X)).astype(np.float32) for name in ("hog", "lbp", "landmarks")}
    np.savez(os.path.join(WORK, "hlf_mirror.npz"), **out)
    print("features", clock(t0), flush=True)
    sys.exit()
B = bovw(); Bm = sp.load_npz(os.path.join(WORK, "bovw_mirror.npz")).tocsr()
Btr, Bmtr = B[TR], Bm[TR]
cross = os.path.join(WORK, "cross_tr.npy")
if step == "init":
    np.lib.format.open_memmap(cross, mode="w+", dtype=np.float32, shape=(n, n)).flush()
elif step == "cross":
    C = np.load(cross, mmap_mode="r+")
    for a in range(int(sys.argv[2]) * 600, n, 1200):
        C[:, a:a + 600] = np.asarray(Btr @ Bmtr[a:a + 600].toarray().T)
    C.flush(); print("cross", clock(t0), flush=True)
elif step == "rest":
    C = np.load(cross, mmap_mode="r")
    S = np.lib.format.open_memmap(path("bovw-mirror", "tr"), mode="w+", dtype=np.float32, shape=(n, n))
    for a in range(0, n, 2000):
        S[a:a + 2000] = 0.5 * (C[a:a + 2000] + C[:, a:a + 2000].T)
    S.flush()
    T = np.empty((len(TE), n), np.float32)
    for a in range(0, len(TE), 600):
        rows = TE[a:a + 600]
        T[a:a + 600] = 0.5 * (np.asarray(Bmtr @ B[rows].toarray().T).T + np.asarray(Btr @ Bm[rows].toarray().T).T)
    np.save(path("bovw-mirror", "te"), T)
    names = ("hog", "lbp", "landmarks")
    F = np.load(os.path.join(WORK, "hlf_mirror.npz"))
    Z, Zm = reduce(joined(names), np.hstack([F[k] for k in names]))
    Ztr, Zmtr = Z[TR], Zm[TR]; g = gamma_scale(Ztr)
    R = np.lib.format.open_memmap(path("hog_lbp_landmarks-mirror", "tr"), mode="w+", dtype=np.float32, shape=(n, n))
    for a in range(0, n, 2000):
        R[a:a + 2000] = 0.5 * (rbf_kernel(Ztr[a:a + 2000], Zmtr, gamma=g) + rbf_kernel(Zmtr[a:a + 2000], Ztr, gamma=g))
    R.flush()
    np.save(path("hog_lbp_landmarks-mirror", "te"), (0.5 * (rbf_kernel(Z[TE], Zmtr, gamma=g) + rbf_kernel(Zm[TE], Ztr, gamma=g))).astype(np.float32))
    print("rest", clock(t0), flush=True)
