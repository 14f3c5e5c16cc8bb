# precompute pfn cdf on a grid for every (curve, prefix) of a big file
import numpy as np, sys
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..'))
from nas.curvefile import load_curves
from nas.interfaces import Curve
from predictors.pfn import PFNPredictor
path, out = sys.argv[1], sys.argv[2]
cs = load_curves(path); T = cs.horizon; p = PFNPredictor(threads=1); C = cs.curves; N = C.shape[0]
items = [(i,t) for i in range(N) for t in range(1,T)]
probs = np.zeros((len(items), p.model.cfg.n_buckets), dtype=np.float16)
B=4096
for s in range(0,len(items),B):
    chunk = items[s:s+B]
    probs[s:s+len(chunk)] = p.predict_probs([Curve(C[i,:t]) for i,t in chunk], T)
    if s % 40960 == 0: print(s, file=sys.stderr, flush=True)
np.savez(out, probs=probs, borders=p.borders, T=T)
