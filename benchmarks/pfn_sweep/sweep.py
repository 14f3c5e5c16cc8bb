import numpy as np, sys, json
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__file__), '..', '..'))
from nas.curvefile import load_curves
from predictors._forecast import HistogramForecast
from nas.calibration import PITCalibrator, prefix_bucket, trial_weights
from nas.policies import should_refit

def load(path, pre):
    cs = load_curves(path); z = np.load(pre)
    b = z['borders']; probs = z['probs'].astype(np.float64)
    edges = np.concatenate([[0.0], b[2:-2], [1.0]])
    fc = HistogramForecast(edges, probs[:,1:-1], probs[:,0], probs[:,-1])
    return cs, fc

def PB(t, T, pre, split):
    b = prefix_bucket(np.asarray(t), T)
    if split is None: return b
    return b + 5*(np.maximum.accumulate(pre)[np.asarray(t)-1] > split)

def run(cs, fc, delta, eps, audit, calib=True, min_epochs=1, seeds=5, refit='sched', prior=4.0, mint=8.0, verbose=False, oracle=False, ei=None, ess=True, split=None):
    T = cs.horizon; N = cs.curves.shape[0]
    row = lambda i,t: i*(T-1)+(t-1)
    groups = cs.groups(); names = list(dict.fromkeys(groups.tolist()))
    res = {}; worst=0; fs=[]
    for g in names:
        idx = np.flatnonzero(groups==g); C = cs.curves[idx]
        best_all = C[:,-1].max(); sp=[]; rg=[]
        for s in range(seeds):
            rng = np.random.default_rng(1000+s)
            order = np.random.default_rng(s).permutation(len(idx))
            cal = PITCalibrator(prior, mint); samples=[]; tws=[]  # (bucket, lo, hi, w)
            best=None; consumed=0; ncomp=0
            for i in order:
                gi = idx[i]; y = C[i]; stop=T; aud=None
                for t in range(1,T):
                    if best is None or t<min_epochs: continue
                    r = row(gi,t)
                    f1 = fc.take([r])
                    if ei is not None:
                        ys = np.linspace(min(best+eps,1.0), 1.0, 41)
                        uu = f1.cdf(ys) if False else np.array([float(f1.cdf(np.array([v]))[0]) for v in ys])
                        if calib: uu = cal.apply(uu, np.full(len(ys), PB(np.array([t]),T,y,split)[0]))
                        p = float(np.trapezoid(1-uu, ys)) / ei * delta
                    else:
                        u = float(f1.cdf(np.array([min(best+eps,1.0)]))[0])
                        if calib: u = float(cal.apply(np.array([u]), PB(np.array([t]),T,y,split))[0])
                        p = 1-u
                    if p < delta:
                        if rng.random() < audit: aud=t; break
                        stop=t; break
                consumed += stop
                if oracle and stop<T:
                    ts = np.arange(1,T); fin=y[-1]; rows = gi*(T-1)+(ts-1); f = fc.take(rows)
                    samples.append((prefix_bucket(ts,T), f.cdf(np.full(len(ts), fin-1e-9)), f.cdf(np.full(len(ts), fin)), trial_weights(ts,T)))
                if stop==T:
                    ncomp+=1; fin=y[-1]
                    if aud is not None:
                        fs.append((fin > best+eps))
                    best = fin if best is None else max(best, fin)
                    ts = np.arange(1,T)
                    if aud is not None: ts = ts[ts<=aud]
                    rows = gi*(T-1)+(ts-1)
                    f = fc.take(rows)
                    hi = f.cdf(np.full(len(ts), fin)); lo = f.cdf(np.full(len(ts), fin-1e-9))
                    w = trial_weights(ts, T) * (1.0/audit if aud is not None else 1.0)
                    samples.append((PB(ts,T,y,split), lo, hi, w)); tws.append(1.0/audit if aud is not None else 1.0)
                    do = should_refit(ncomp) if refit=='sched' else (ncomp % refit == 0)
                    if calib and do:
                        b,l,h,ww = (np.concatenate(x) for x in zip(*samples))
                        cal.fit(b,l,h,ww, trial_weight=np.array(tws)) if ess else cal.fit(b,l,h,ww)
            sp.append(len(idx)*T/consumed); rg.append(best_all-best); worst=max(worst,best_all-best)
        res[g]=(np.mean(sp), np.mean(rg))
        if verbose: print(g[:50], res[g])
    spd = np.mean([v[0] for v in res.values()]); reg=np.mean([v[1] for v in res.values()])
    return dict(speedup=round(spd,3), regret=round(reg,4), worst=round(worst,4), audits=len(fs), false=float(np.mean(fs)) if fs else None)

if __name__=='__main__':
    cs, fc = load(sys.argv[1], sys.argv[2])
    for spec in sys.argv[3:]:
        kw = json.loads(spec)
        print(spec, run(cs, fc, **kw), flush=True)
