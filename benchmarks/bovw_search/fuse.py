import os
WORK = os.environ.get("BOVW_SEARCH_DIR", ".cache/bovw-search")  # intermediate arrays (words, features); run from the repository root
os.makedirs(WORK, exist_ok=True)
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
D = np.load(os.path.join(WORK, "dec.npz")); W = np.load(os.path.join(WORK, "words.npz"), allow_pickle=True)
y = W["y"]; ev = D["ev"]; n = 3589; yp = y[ev[:n]]
dh, db, dbf = D["dh"][:n], D["db"][:n], D["dbf"][:n]
for name, Z in [("h", dh), ("b", db), ("h+b", np.hstack([dh, db])), ("h+b+bf", np.hstack([dh, db, dbf])), ("h+(b+bf)", np.hstack([dh, db + dbf]))]:
    print(name, cross_val_score(LogisticRegression(C=1, max_iter=2000), Z, yp, cv=5).mean().round(4))
for w in (0.5, 1, 2, 3, 4, 6):
    print("sum w", w, ((dh / dh.std() + w * (db + dbf) / (db + dbf).std()).argmax(1) == yp).mean().round(4), ((dh / dh.std() + w * db / db.std()).argmax(1) == yp).mean().round(4))
