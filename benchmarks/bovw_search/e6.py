import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import *  # noqa: F403 (WORK, the splits, hist, run, handcrafted)
from sklearn.svm import LinearSVC, SVC
from sklearn.preprocessing import StandardScaler
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
H = handcrafted()
F = hist(4096, (1, 2, 3, 4), "presence")
X = sp.hstack([sp.csr_matrix(H), F]).tocsr()
nh = H.shape[1]
dense = Pipeline([("select", ColumnTransformer([("c", "passthrough", slice(0, nh))], sparse_threshold=0)), ("scale", StandardScaler()), ("pca", PCA(256, random_state=0)), ("svm", SVC(C=10, cache_size=1000))])
hist_ = Pipeline([("select", ColumnTransformer([("c", "passthrough", slice(nh, X.shape[1]))], sparse_threshold=1.0)), ("svm", LinearSVC(C=0.2, max_iter=3000))])
t = time.time()
st = StackingClassifier([("dense", dense), ("sift-bovw", hist_)], final_estimator=LogisticRegression(max_iter=2000), cv=3, stack_method="decision_function", n_jobs=2).fit(X[TR], y[TR])
print("fit", round(time.time() - t), flush=True)
for nm, r in (("PU", PU),):
    p = st.predict(X[r]); print(nm, (p == y[r]).mean(), flush=True)
print("final coef", np.round(st.final_estimator_.coef_, 2))
import joblib; joblib.dump(st.final_estimator_, os.path.join(WORK, "final.joblib"))
