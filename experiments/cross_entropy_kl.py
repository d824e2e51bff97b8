"""Cross-entropy and KL: closed forms, integration, Monte Carlo, and minimising KL(empirical || model) = NLL."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import integrate, stats

import mle_jax as mj

from .common import Experiment, Outcome, close, holds, plt, save

K = 5
P_TRUE = np.array([0.4, 0.25, 0.2, 0.1, 0.05])


def run(out, quick: bool) -> Outcome:
    p, q = mj.Normal(jnp.float32(0.0), jnp.float32(1.0)), mj.Normal(jnp.float32(1.0), jnp.float32(2.0))
    kl_closed = float(mj.kl(p, q))
    # the integrand is smooth and Gaussian-tailed: the trapezoid rule on a fine grid converges faster than
    # any power of the step (error far below 1e-12 at h = 0.01 on [-40, 40]) and, unlike adaptive
    # quadrature, has no warnings to raise
    ys = np.linspace(-40.0, 40.0, 8001)
    integrand = stats.norm(0, 1).pdf(ys) * (stats.norm(0, 1).logpdf(ys) - stats.norm(1, 2).logpdf(ys))
    kl_quad = float(integrate.trapezoid(integrand, ys))
    kl_mc, kl_se = (float(v) for v in mj.kl_mc(jax.random.PRNGKey(0), p, q, 20_000 if quick else 100_000))

    pd = mj.Categorical(jnp.log(jnp.array([0.5, 0.3, 0.2])))
    qd = mj.Categorical(jnp.log(jnp.array([0.2, 0.2, 0.6])))
    kl_discrete = float(mj.kl(pd, qd))

    # the lecture's closing derivation, numerically: fit a Categorical to labels two ways
    n = 500
    y = jnp.asarray(np.random.default_rng(8).choice(K, size=n, p=P_TRUE), jnp.int32)
    emp = mj.empirical(y, K)
    r = mj.recipe(lambda logits, x_i: logits, mj.categorical(K))
    x = jnp.zeros((n, 1), jnp.float32)  # the model ignores x: one theta for all examples
    # Adam here: near the optimum a float32 NLL is too flat for L-BFGS's line search to resolve
    # probabilities to 1e-5, while its gradient still points the way
    by_nll = mj.fit(r, r.init(jnp.zeros(K)), x, y, optax.adam(0.1), steps=600)
    kl_to_model = lambda logits: mj.kl(emp, mj.Categorical(logits))
    by_kl, kl_path = _minimise(kl_to_model, jnp.zeros(K), steps=60)
    probs_nll = np.asarray(jax.nn.softmax(by_nll.params.model))
    probs_kl = np.asarray(jax.nn.softmax(by_kl))
    freq = np.bincount(np.asarray(y), minlength=K) / n
    start = jnp.asarray(np.random.default_rng(9).normal(size=K), jnp.float32)
    dec = mj.nll_decomposition(y, mj.Categorical(start))
    grad_h = jax.grad(lambda z: mj.nll_decomposition(y, mj.Categorical(z)).entropy)(start)

    # continuous data: CE(empirical || Normal) is the mean NLL; its minimiser is the sample mean and std
    yc = jnp.asarray(np.random.default_rng(10).normal(1.5, 0.7, size=400), jnp.float32)
    ce = lambda t: mj.cross_entropy(mj.empirical(yc), mj.Normal(t[0], jnp.exp(t[1])))
    tc, _ = _minimise(ce, jnp.zeros(2), steps=60)

    fig = _figure(out, p, q, kl_closed, pd, qd, kl_path, float(dec.entropy), by_nll.history)
    return Outcome(
        "cross_entropy_kl", "Cross-entropy and KL divergence",
        "KL(q || p) = int q log q - q log p measures how a model p differs from q. With q the empirical "
        "distribution (1/I) sum_i delta(y - y_i), the first term does not depend on theta and the second is "
        "the mean NLL: minimising KL(empirical || model) is minimising the NLL.",
        "KL(N(0,1) || N(1,2)) by closed form, numerical integration and Monte Carlo; a discrete KL; a "
        f"Categorical (K = {K}) fitted to {n} labels by minimising the NLL (mj.fit, Adam) and, separately, by "
        "minimising KL(empirical || model) with L-BFGS; a Normal fitted to real data by minimising CE(empirical, model).",
        [fig],
        [
            close("KL(N(0,1) || N(1,2)) closed form = numerical integration", kl_closed, kl_quad, rtol=1e-6),
            close("KL(N(0,1) || N(1,2)) = log 2 + 2/8 - 1/2 = 0.4431 (the lecture's value)", kl_closed,
                  np.log(2) + 0.25 - 0.5, rtol=1e-6),
            holds("Monte Carlo KL within 4 standard errors of the closed form", abs(kl_mc - kl_closed) < 4 * kl_se,
                  [kl_mc, kl_se], f"|mc - {kl_closed:.5f}| < 4 se"),
            close("discrete KL equals scipy.stats.entropy(p, q)", kl_discrete,
                  stats.entropy([0.5, 0.3, 0.2], [0.2, 0.2, 0.6]), rtol=1e-6),
            # 1e-4 is a twentieth of one label's weight 1/n: it tells the frequencies from any other answer
            # without asking two optimisers for float32's last digits
            close("NLL fit and KL fit give the same probabilities", probs_kl, probs_nll, atol=1e-4),
            close("both equal the empirical frequencies", probs_nll, freq, atol=1e-4),
            close("NLL/N = H(empirical) + KL(empirical || model)", dec.mean_nll, dec.entropy + dec.kl, rtol=1e-6),
            close("the H(empirical) term has gradient exactly 0 in the model", np.asarray(grad_h), np.zeros(K), atol=0),
            close("CE(empirical, Normal) minimiser is the sample mean and std", [tc[0], jnp.exp(tc[1])],
                  [float(jnp.mean(yc)), float(jnp.std(yc))], rtol=1e-4),
        ],
        {"kl_normal_closed": kl_closed, "kl_normal_quad": kl_quad, "kl_normal_mc": kl_mc, "kl_normal_mc_se": kl_se,
         "kl_discrete": kl_discrete, "entropy_empirical": float(dec.entropy),
         "kl_empirical_at_fit": float(kl_to_model(by_nll.params.model))},
    )


def _minimise(loss, start, steps):
    """L-BFGS on a scalar function; returns the minimiser and the loss at every step."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry, _):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(params, updates), state), value

    (params, _), path = jax.lax.scan(step, (start, opt.init(start)), None, length=steps)
    return params, np.asarray(path)


def _figure(out, p, q, kl_value, pd, qd, kl_path, entropy, nll_path):
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    ys = np.linspace(-5, 7, 600, dtype=np.float32)
    lp = np.asarray(jax.vmap(mj.log_prob, (None, 0))(p, ys))
    lq = np.asarray(jax.vmap(mj.log_prob, (None, 0))(q, ys))
    ax = axes[0]
    ax.plot(ys, np.exp(lp), label="q = N(0, 1)")
    ax.plot(ys, np.exp(lq), label="p = N(1, 2)")
    ax.fill_between(ys, 0, np.exp(lp) * (lp - lq), color="C2", alpha=0.3, label="integrand q log(q / p)")
    ax.set(xlabel="z", title=f"KL(q || p) = {kl_value:.4f}")
    ax.legend(fontsize=8)
    ax = axes[1]
    width = 0.38
    ax.bar(np.arange(3) - width / 2, np.asarray(mj.probs(pd)), width, label="p")
    ax.bar(np.arange(3) + width / 2, np.asarray(mj.probs(qd)), width, label="q")
    ax.set(xticks=range(3), xlabel="outcome", title=f"discrete: KL(p || q) = {float(mj.kl(pd, qd)):.4f}")
    ax.legend(fontsize=8)
    ax = axes[2]
    ax.plot(np.arange(1, len(nll_path) + 1), nll_path, label="NLL / N while minimising the NLL")
    ax.plot(np.arange(1, len(kl_path) + 1), kl_path + entropy, "--", label="KL(emp || model) + H(emp) while minimising KL")
    ax.axhline(entropy, color="k", ls=":", label=f"H(empirical) = {entropy:.4f}")
    ax.set(xlabel="step (Adam for the NLL, L-BFGS for the KL)", xscale="log", ylabel="nats", title="Minimising KL(empirical || model) = minimising NLL")
    ax.legend(fontsize=8)
    return save(fig, out, "cross_entropy_kl")


EXPERIMENT = Experiment("cross_entropy_kl", "Cross-entropy and KL divergence", run)
