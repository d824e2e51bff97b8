"""One table of distribution cases: theta, a scipy reference, and target grids with the tails."""

import numpy as np
from scipy import special, stats

import mle_jax as mj


def _onehot_logpmf(logits):
    """scipy's one-draw multinomial: log Pr(y) = multinomial.logpmf(onehot(y), 1, softmax(z))."""
    p = special.softmax(np.asarray(logits, np.float64))
    k = len(p)
    return lambda ys: np.array([stats.multinomial.logpmf(np.eye(k)[y], 1, p) for y in np.atleast_1d(ys)])


CASES = {
    "normal-standard": (mj.Normal(0.0, 1.0), stats.norm(0.0, 1.0).logpdf,
                        np.array([-30.0, -5.0, -1.0, 0.0, 0.5, 3.0, 37.0])),
    "normal-shifted": (mj.Normal(2.5, 0.3), stats.norm(2.5, 0.3).logpdf,
                       np.array([2.5 - 0.3e4, -1.0, 2.5, 2.7, 9.0, 2.5 + 0.3e4])),
    "normal-wide": (mj.Normal(-4.0, 50.0), stats.norm(-4.0, 50.0).logpdf,
                    np.array([-1e4, -4.0, 0.0, 120.0, 5e5])),
    "bernoulli-moderate": (mj.Bernoulli(0.7), stats.bernoulli(special.expit(0.7)).logpmf, np.array([0, 1])),
    "bernoulli-negative": (mj.Bernoulli(-3.0), stats.bernoulli(special.expit(-3.0)).logpmf, np.array([0, 1])),
    "bernoulli-zero": (mj.Bernoulli(0.0), stats.bernoulli(0.5).logpmf, np.array([0, 1])),
    "categorical-3": (mj.Categorical(np.array([0.2, -1.0, 2.0])), _onehot_logpmf([0.2, -1.0, 2.0]),
                      np.array([0, 1, 2])),
    "categorical-wide": (mj.Categorical(np.array([30.0, -30.0, 0.0, 5.0])),
                         _onehot_logpmf([30.0, -30.0, 0.0, 5.0]), np.array([0, 1, 2, 3])),
}


def scipy_entropy(theta):
    if isinstance(theta, mj.Normal):
        return stats.norm(theta.loc, theta.scale).entropy()
    if isinstance(theta, mj.Bernoulli):
        return stats.bernoulli(special.expit(theta.logits)).entropy()
    return stats.entropy(special.softmax(np.asarray(theta.logits, np.float64)))
