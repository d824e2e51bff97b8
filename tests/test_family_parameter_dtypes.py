"""A family's own parameters never widen the dtype of the data and the model (x64 enabled).

A family parameter fixed as a Python float (``p._replace(family={"shape": 2.0})``, or ``fit``'s held value under
``start="intercept_only"``) is weakly typed, but the shift of the density computed from it (``a log a - a -
lgamma(a)``, Student t's normaliser) came back a strong float64 with x64 on, and adding it to the float32 terms
made the NLL float64: L-BFGS's line search then refused the mixed dtypes (a TypeError). The family's
``(scale, shift)`` is now cast to its kernel's dtype where they meet (``_reductions.affine_as``).

The table runs every built-in family that owns a parameter (``tests/families_table.py``), each parameter learned
(a float array) or fixed as a Python float, with float32 and float64 data."""

import functools
import sys
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj
from mle_jax.families import Density

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from families_table import FAMILIES, raw_example  # noqa: E402

N = 24


def test_fixed_family_parameters_keep_float32_under_x64():
    """The NLL, loss and log-densities at a Gamma GLM shape and a Student t df fixed as Python floats (x64 on,
    float32 data and model): float32 (float64 before the fix), and scipy's log-densities."""
    from scipy import stats
    y = np.asarray([0.5, 1.2, 3.0, 0.8], np.float32)
    eta = np.asarray([0.1, -0.3, 0.7, 0.2], np.float32)
    a, df = 2.5, 3.0
    gamma_ref = stats.gamma.logpdf(y.astype(np.float64), a, scale=np.exp(eta.astype(np.float64)) / a)
    t_ref = stats.t.logpdf(y.astype(np.float64), df, eta.astype(np.float64), 0.8)
    cases = [(mj.gamma("mean"), {"shape": float(mj.links.softplus_inverse(a))}, eta, gamma_ref),
             (mj.student_t("learned", 0.8), {"df": float(mj.links.softplus_inverse(df))}, eta, t_ref)]
    with jax.enable_x64(True):
        for family, fixed, raw, ref in cases:
            r = mj.recipe(lambda p, x_i: p * x_i[0], family)
            p = r.init(jnp.float32(1.0))._replace(family=fixed)
            x = jnp.asarray(raw[:, None])
            # the three methods in one program (one compile, not three; everything closed over, so a fixed parameter
            # is the Python float each method sees when called alone, and the data are concrete for the recipe's check)
            nll, loss, lp = jax.jit(lambda: (r.nll(p, x, y), r.loss(p, x, y), r.log_prob(p, x, y)))()
            assert (nll.dtype, loss.dtype, lp.dtype) == (jnp.float32,) * 3, family.name
            np.testing.assert_allclose(np.asarray(lp, np.float64), ref, rtol=2e-6, err_msg=family.name)
            np.testing.assert_allclose(float(nll), -ref.sum(), rtol=2e-6, err_msg=family.name)


def test_integer_outputs_and_targets_keep_a_float_affine():
    """A least-squares Normal (sigma fixed, ``scale = -1/(2 sigma^2)``) on integer raw outputs and integer targets:
    its kernel ``(y - mu)^2`` is an integer, and the affine cast to it made ``scale`` 0 and the shift an integer
    (every log-density -1, or -3 from ``independent``); now the closed form, scipy's ``norm.logpdf(y, mu, 2)``."""
    y = np.asarray([[1, 3], [-2, 5], [0, 0], [7, -4]], np.int32)
    mu = np.asarray([[0, 1], [1, 2], [4, -1], [0, 0]], np.int32)
    ref = -np.square(y - mu) / 8.0 - np.log(2.0) - 0.5 * np.log(2 * np.pi)
    fam = mj.normal(2.0)
    got = jax.vmap(fam.log_prob, in_axes=(None, 0, 0))({}, jnp.asarray(mu[:, 0]), jnp.asarray(y[:, 0]))
    np.testing.assert_allclose(np.asarray(got, np.float64), ref[:, 0], rtol=2e-6)
    r = mj.recipe(lambda p, x_i: x_i, mj.independent(fam, 2, shared=False))  # the scale inside the sum over d
    np.testing.assert_allclose(np.asarray(r.log_prob(r.init({}), mu, y), np.float64), ref.sum(1), rtol=2e-6)


def test_density_of_numpy_numbers_keeps_float64_with_x64_off():
    """``Density.log_prob`` of a NumPy kernel (float64 values, x64 off) and a NumPy affine: NumPy's exact float64
    (the closed form, scipy's ``norm.logpdf(y, mu, 2)``); the affine cast to the kernel's dtype was a JAX float32
    (float64 is no JAX dtype with x64 off), 1e-8 off."""
    density = Density(lambda fp, raw, y: (y - raw) ** 2, lambda fp: (-0.5 / 4.0, -0.5 * np.log(2 * np.pi * 4.0)))
    raw, y = np.asarray([0.5, 0.1, -2.0]), np.asarray([1.5, 0.3, 1.0 / 3.0])
    with jax.enable_x64(False):
        got = density.log_prob({}, raw, y)
    ref = -np.square(y - raw) / 8.0 - np.log(2.0) - 0.5 * np.log(2 * np.pi)
    assert np.asarray(got).dtype == np.float64
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-14)


@pytest.mark.deep
def test_split_objective_of_bfloat16_data_sums_its_shift_in_float32():
    """``fit``'s full-batch objective (the Gamma GLM's ``Split``: the free terms, and ``-log y`` summed once) on
    bfloat16 data with a float32 shape of 40: ``recipe.nll`` to float32 rounding and scipy's ``gamma.logpdf`` at the
    bfloat16 values to the kernel's bfloat16 noise. The shift ``a log a - a - lgamma(a)`` (0.92) and the data's sum
    were rounded to bfloat16 (a relative 2e-3, times N: 3e-3 of the NLL, not the nll's 2e-4)."""
    from scipy import stats
    rng = np.random.default_rng(0)
    n, a = 4000, 40.0
    eta = rng.normal(0, 0.3, n)
    x = jnp.asarray(eta[:, None], jnp.bfloat16)
    y = jnp.asarray(np.maximum(rng.gamma(a, np.exp(eta) / a), 1e-2), jnp.bfloat16)
    r = mj.recipe(lambda p, x_i: x_i[0], mj.gamma("mean"))
    s = jnp.float32(mj.links.softplus_inverse(a))
    p = r.init(jnp.asarray(0, jnp.bfloat16))._replace(family={"shape": s})
    shape = float(mj.links.softplus.forward(s))
    ref = -stats.gamma.logpdf(np.asarray(y, np.float64), shape, scale=np.exp(np.asarray(x[:, 0], np.float64)) / shape)
    data = jax.jit(lambda y: r.data_term(y, dtype=jnp.bfloat16))(y)
    split = jax.jit(lambda p, x, y, data: r.objective(p, x, y, data=data)[0])(p, x, y, data)  # fit's, compiled
    assert split.dtype == jnp.float32
    np.testing.assert_allclose(float(split), float(r.nll(p, x, y)), rtol=1e-5)
    np.testing.assert_allclose(float(split), ref.sum(), rtol=1e-3)


def _gamma_glm_reference(x, y):
    """The Gamma GLM's (log link) coefficients, whose MLE does not depend on the shape (scipy's BFGS on
    ``sum_i y_i / mu_i + log mu_i``), and the shape's MLE given them (the root of ``log a - psi(a) = mean(y/mu -
    log(y/mu) - 1)``, scipy's brentq), in float64."""
    from scipy import optimize, special
    design = np.column_stack([np.ones(len(y)), np.asarray(x, np.float64)])
    y = np.asarray(y, np.float64)

    def deviance(beta):
        eta = design @ beta
        u = y * np.exp(-eta)
        return np.sum(u + eta), design.T @ (1.0 - u)
    beta = optimize.minimize(deviance, np.zeros(design.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-12}).x
    u = y * np.exp(-design @ beta)
    s = np.mean(u - np.log(u) - 1)
    return beta, optimize.brentq(lambda a: np.log(a) - special.digamma(a) - s, 1e-3, 1e3, xtol=1e-14)


@pytest.mark.deep  # compiles L-BFGS (5-8 s); the dtype mechanism is in the fast tests above
def test_gamma_glm_lbfgs_from_the_intercept_keeps_float32_under_x64():
    """``fit(..., optax.lbfgs(), start="intercept_only")`` holds the learned shape at a Python float (x64 on,
    float32 data): a TypeError before the fix (L-BFGS's line search, float32 / float64 branches); now float32
    params at scipy's coefficients and shape MLE."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(100, 1)).astype(np.float32)
    y = rng.gamma(2.5, np.exp(0.4 + 0.3 * x[:, 0]) / 2.5).astype(np.float32)
    beta, shape = _gamma_glm_reference(x, y)
    with jax.enable_x64(True):
        init, apply = mj.models.linear(1)
        r = mj.recipe(apply, mj.gamma("mean"))
        p = r.init(init(jax.random.PRNGKey(0)))
        assert _dtypes(p) == {jnp.dtype(jnp.float32)}
        res = mj.fit(r, p, x, y, optax.lbfgs(), steps=20, start="intercept_only", run=mj.Run(progress=False))
        assert _dtypes(res.params) == {jnp.dtype(jnp.float32)}
        got = [float(res.params.model["b"]), float(res.params.model["w"][0])]
        np.testing.assert_allclose(got, beta, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(float(mj.links.softplus.forward(res.params.family["shape"])), shape, rtol=1e-4)


# ----------------------------------------------------------------------------- every family that owns a parameter

def _owners():
    return [name for name, entry in FAMILIES.items() if jax.tree.leaves(entry.family.init(jnp.float32))]


def _targets(entry, dtype):
    """N valid, finite targets from the entry's list (repeated), in ``dtype`` (labels as int32)."""
    kind, ys = next(iter(entry.targets.items()))
    ys = np.asarray(ys, np.float64)
    keep = ~entry.refuses(ys, kind) & np.isfinite(ys).reshape(len(ys), -1).all(axis=1)
    ys = np.resize(ys[keep], (N,) + ys.shape[1:])
    return ys.astype(np.int32 if kind == "int" else dtype)


def _fixed(fparams):
    """``fparams`` with every scalar leaf a Python float (a fixed parameter), or None where none is scalar."""
    leaves, tree = jax.tree.flatten(fparams)
    if not any(np.ndim(leaf) == 0 for leaf in leaves):
        return None
    return jax.tree.unflatten(tree, [float(leaf) if np.ndim(leaf) == 0 else leaf for leaf in leaves])


def _dtypes(tree):
    """The dtypes of the floating leaves (Python floats, fixed, are not leaves the model or the data set)."""
    return {jnp.dtype(leaf.dtype) for leaf in jax.tree.leaves(tree)
            if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)}


@functools.cache
def _float64_log_probs(name):
    """The family's log-densities of a batch of targets at one raw output, jitted: every variant's float64 reference
    is the same program (its arguments all float64, or integer labels), one compile a family, not one op-by-op
    evaluation a variant."""
    return jax.jit(jax.vmap(FAMILIES[name].family.log_prob, in_axes=(None, None, 0)))


def _float64_reference(name, fparams, y):
    """The NLL and log-densities at the same values in float64 (every leaf, raw and y cast): the dtype of the data
    must not change the numbers beyond float32 rounding."""
    fam = FAMILIES[name].family
    fp64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), fparams)
    raw = jnp.asarray(raw_example(fam, np.float64))
    y64 = jnp.asarray(y if jnp.issubdtype(y.dtype, jnp.integer) else np.asarray(y, np.float64))
    return np.asarray(_float64_log_probs(name)(fp64, raw, y64), np.float64)


# (dtype, parameters, whether fit and inference run too): fixed Python floats in both dtypes, learned in float32;
# fit and inference run on the float32 fixed parameters only, the edge that found the bug (a weak Python float
# meeting float32 data); float64 data is their natural dtype, which every float64 fit in the suite runs
_VARIANTS = ((np.float32, "learned", False), (np.float32, "fixed", True), (np.float64, "fixed", False))


@pytest.mark.deep
@pytest.mark.parametrize("name", _owners())
def test_family_parameters_keep_the_datas_dtype_under_x64(name):
    """Under x64, for every family owning a parameter, learned (a float32 array) or fixed as a Python float: the
    NLL, the loss, the log-densities, predict's theta and the point prediction are in the data's dtype (float32
    stays float32, float64 stays float64) and the log-densities equal the float64 evaluation at the same values;
    with the parameters fixed in float32, ``fit``'s objective (its split kernel and data term) is in the params'
    dtype (L-BFGS's line search refuses any other: the TypeError the GLM tests above and below run), ``fit``
    keeps the params' dtype and structure, and ``inference``'s log-likelihood is that evaluation's (float64, the
    natural dtype, is the same program: ``_VARIANTS``). Before the fix the Gamma GLM's shape and Student t's df,
    fixed, made float32 NLLs float64 and L-BFGS a TypeError. (``fit`` runs SGD here: its compile is a third of
    L-BFGS's, and the dtype L-BFGS needs is the objective's, checked by tracing it.)"""
    entry = FAMILIES[name]
    fam = entry.family
    sgd = optax.sgd(1e-3)
    with jax.enable_x64(True):
        for dtype, label, fits in _VARIANTS:
            fparams = fam.init(dtype) if label == "learned" else _fixed(fam.init(dtype))
            if fparams is None:  # no scalar parameter to fix (a vector per output)
                continue
            rtol = 2e-5 if dtype == np.float32 else 1e-12
            want = {jnp.dtype(dtype)}
            x = jnp.zeros((N, 1), dtype)
            y = jnp.asarray(_targets(entry, dtype))
            r = mj.recipe(lambda p, x_i: p, fam)
            p = r.init(jnp.asarray(raw_example(fam, dtype)))._replace(family=fparams)
            case = f"{name}, {np.dtype(dtype).name}, {label}"
            ref = _float64_reference(name, fparams, y)
            # the five methods in one program (one compile, not five; everything closed over, so a fixed parameter
            # is the Python float each method sees when called alone, and the data are concrete for the recipe's check)
            nll, loss, lp, theta, point = jax.jit(lambda: (r.nll(p, x, y), r.loss(p, x, y), r.log_prob(p, x, y),
                                                           r.predict(p, x), r.point(p, x)))()
            assert _dtypes((nll, loss, lp)) == want, case
            np.testing.assert_allclose(np.asarray(lp, np.float64), ref, rtol=rtol, atol=rtol, err_msg=case)
            np.testing.assert_allclose(float(nll), -ref.sum(), rtol=rtol, atol=rtol, err_msg=case)
            assert _dtypes(theta) == want, case
            assert not jnp.issubdtype(point.dtype, jnp.floating) or point.dtype == dtype, case
            if not fits:
                continue
            objective = jax.eval_shape(lambda p: r.objective(p, x, y, data=r.data_term(y, dtype=dtype))[0], p)
            assert objective.dtype == dtype, case
            res = mj.fit(r, p, x, y, sgd, steps=1, run=mj.Run(progress=False))
            assert _dtypes(res.params) == want, case
            assert jax.tree.structure(res.params) == jax.tree.structure(p), case  # fixed leaves stay fixed
            with warnings.catch_warnings():  # params is no maximum: the Hessian may be indefinite (its warning)
                warnings.simplefilter("ignore", RuntimeWarning)
                info = mj.inference(r, p, x, y)
            np.testing.assert_allclose(info.loglik, ref.sum(), rtol=max(rtol, 1e-6), err_msg=case)


@pytest.mark.deep
@pytest.mark.parametrize("family", [mj.gamma("mean"), mj.normal("learned"), mj.negative_binomial()], ids=str)
def test_glm_starts_keep_the_datas_dtype_under_x64(family):
    """``intercept_only``, ``family_mle`` and ``fit(..., start="intercept_only")`` with L-BFGS, for the GLM families
    that own a parameter, learned or fixed as a Python float: the result in the data's dtype (a fixed parameter
    kept a Python float by ``intercept_only``, made a learnable array of the model's dtype by ``family_mle``); the
    fitted NLL equals ``recipe.nll`` at the fitted params evaluated in float64 (float32 rounding). The fit runs in
    float32 only (learned and fixed: ``start="intercept_only"`` holds either as a Python float, the edge);
    float64, the natural dtype, checks ``intercept_only`` and ``family_mle``."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(200, 2))
    mu = np.exp(0.5 + 0.3 * x[:, 0])
    y = rng.gamma(2.0, mu / 2.0) if family.spec.kind == "gamma" else (
        rng.normal(mu, 0.5) if family.spec.kind == "normal" else rng.poisson(mu).astype(np.float64))
    lbfgs = optax.lbfgs()
    with jax.enable_x64(True):
        init, apply = mj.models.linear(2)
        r = mj.recipe(apply, family)
        for dtype, label, _ in _VARIANTS:
            want = {jnp.dtype(dtype)}
            xd, yd = x.astype(dtype), y.astype(dtype)
            p = r.init(jax.tree.map(lambda a: a.astype(dtype), init(jax.random.PRNGKey(0))))
            q = p if label == "learned" else p._replace(family=_fixed(p.family))
            case = f"{family.name}, {np.dtype(dtype).name}, {label}"
            start = mj.intercept_only(r, yd, q)
            assert _dtypes(start) == want, case
            assert jax.tree.structure(start) == jax.tree.structure(q), case
            assert _dtypes(mj.family_mle(r, start, xd, yd)) == want, case
            if dtype == np.float64:
                continue
            res = mj.fit(r, q, xd, yd, lbfgs, steps=10, start="intercept_only", run=mj.Run(progress=False))
            assert _dtypes(res.params) == want, case
            nll = r.nll(res.params, xd, yd)
            assert nll.dtype == dtype, case
            as64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), res.params)
            np.testing.assert_allclose(float(nll), float(r.nll(as64, x, y)), rtol=2e-5, err_msg=case)


# ----------------------------------------------------------------------------- strong float64 and integer parameters

def _location_scale_cases(y, mu, b, df):
    """Laplace, asymmetric Laplace and Student t with a learned scale b (Student t's df learned too), and scipy's
    log-densities in float64."""
    from scipy import stats
    q = 0.3
    return [(mj.laplace("learned"), stats.laplace.logpdf(y, mu, b)),
            (mj.asymmetric_laplace(q, "learned"),
             stats.laplace_asymmetric.logpdf(y, np.sqrt(q / (1 - q)), mu, b / np.sqrt(q * (1 - q)))),
            (mj.student_t("learned", "learned"), stats.t.logpdf(y, df, mu, b))]


@pytest.mark.deep
def test_strong_float64_family_parameters_keep_float32_under_x64():
    """A learned scale (and Student t's df) given as a strong float64 (``np.float64``, a ``jnp.float64`` array) with
    float32 data and model, x64 on: the NLL, its gradient and the log-densities are float32 and scipy's (before the
    fix laplace, asymmetric_laplace and student_t multiplied by ``1 / s`` in float64: a float64 NLL, and L-BFGS's
    line search a TypeError); one jitted L-BFGS step runs and stays float32."""
    y = np.asarray([0.5, -1.2, 3.0, 0.8], np.float32)
    eta = np.asarray([0.1, -0.3, 0.7, 0.2], np.float32)
    b, df = 1.3, 5.0
    cases = _location_scale_cases(y.astype(np.float64), eta.astype(np.float64), b, df)
    with jax.enable_x64(True):
        for family, ref in cases:
            r = mj.recipe(lambda p, x_i: p * x_i[0], family)
            p = r.init(jnp.float32(1.0))
            fixed = {"scale": np.float64(mj.links.softplus_inverse(b))}
            if "df" in p.family:
                fixed["df"] = jnp.float64(mj.links.softplus_inverse(df))
            p = p._replace(family=fixed)
            x = jnp.asarray(eta[:, None])
            opt = optax.lbfgs()

            def step(model, state, p=p, x=x, r=r):
                loss = lambda m: r.nll(p._replace(model=m), x, y)
                value, g = jax.value_and_grad(loss)(model)
                updates, state = opt.update(g, state, model, value=value, grad=g, value_fn=loss)
                return optax.apply_updates(model, updates), state

            def all_three(p=p, x=x, r=r):  # one program (p closed over: its float64 leaves the constants they are)
                return jax.value_and_grad(r.nll)(p, x, y), r.log_prob(p, x, y), step(p.model, opt.init(p.model))[0]
            (nll, grad), lp, model = jax.jit(all_three)()
            assert (nll.dtype, lp.dtype, grad.model.dtype) == (jnp.float32,) * 3, family.name
            np.testing.assert_allclose(np.asarray(lp, np.float64), ref, rtol=3e-6, err_msg=family.name)
            np.testing.assert_allclose(float(nll), -ref.sum(), rtol=3e-6, err_msg=family.name)
            assert model.dtype == jnp.float32, family.name


def test_laplace_of_a_float64_or_integer_scale_is_float32():
    """The fast case of the two below: one Laplace log-density (x64 on, float32 raw output and target) at a learned
    scale given as a strong float64 (float64 before the fix; a ``np.float64`` scalar, a Python float subclass, was
    let through as if weak: float64 too) and as the integer 1 (a TypeError): float32, scipy's
    ``laplace.logpdf``."""
    from scipy import stats
    fam = mj.laplace("learned")
    with jax.enable_x64(True):
        for s in (jnp.float64(0.4), np.float64(0.4), 1):
            got = fam.log_prob({"scale": s}, jnp.float32(0.25), jnp.float32(-1.5))
            ref = stats.laplace.logpdf(-1.5, 0.25, float(mj.links.softplus.forward(float(s))))
            assert got.dtype == jnp.float32, s
            np.testing.assert_allclose(float(got), ref, rtol=2e-6)



@pytest.mark.deep  # ~3 s (eager value and gradient, two families)
def test_a_float64_positive_parameter_read_in_float32_keeps_its_value():
    """A learned scale (and df) as a float64 raw number with float32 raw outputs and targets (x64 on): the kernel
    reads it in float32, whose softplus floor is 1.2e-7, the affine (``-log s``) in float64 (2.2e-16). Cast as a raw
    number the kernel's scale was the value plus 1.2e-7 (at a scale of 1e-6 the Laplace log-density 10.43 for
    10.11); it is cast by its value now (``families._family._refloored``). scipy's ``laplace.logpdf`` and
    ``t.logpdf`` at the float64 values, and the gradient in the raw scale against ``d/ds`` of the Laplace's
    ``-log(2 s) - |y - mu| / s`` times ``sigmoid(raw)``."""
    from scipy import stats
    with jax.enable_x64(True):
        mu, y = np.float32(0.25), np.float32(0.25 + 3e-6)
        gap = float(y) - float(mu)
        raw_df = mj.links.softplus_inverse(jnp.float64(4.0))
        for s in (1e-3, 1e-6):
            for raw in (mj.links.softplus_inverse(jnp.float64(s)), np.float64(mj.links.softplus_inverse(jnp.float64(s)))):
                value = float(mj.links.softplus.forward(jnp.float64(raw)))
                got, grad = jax.value_and_grad(lambda r: mj.laplace("learned").log_prob({"scale": r}, mu, y))(raw)
                assert got.dtype == jnp.float32
                np.testing.assert_allclose(float(got), stats.laplace.logpdf(float(y), float(mu), value), rtol=2e-6)
                want = (-1 / value + gap / value ** 2) * float(jax.nn.sigmoid(jnp.float64(raw)))
                np.testing.assert_allclose(float(grad), want, rtol=2e-5)
                got = mj.student_t("learned", "learned").log_prob({"df": raw_df, "scale": raw}, mu, y)
                np.testing.assert_allclose(float(got), stats.t.logpdf(float(y), 4.0, float(mu), value), rtol=2e-6)

@pytest.mark.deep
def test_integer_family_parameters_are_reals():
    """A family parameter fixed as a Python integer (``{"scale": 1}``, raw: ``b = softplus(1)``) is the real 1.0:
    scipy's log-densities (before the fix ``jax.nn.sigmoid`` refused the integer while tracing, "logistic does not
    accept dtype int64"), and for every built-in family owning a scalar parameter the same log-densities as 1.0."""
    y = np.asarray([0.5, -1.2, 3.0, 0.8])
    eta = np.asarray([0.1, -0.3, 0.7, 0.2])
    b = float(mj.links.softplus.forward(1.0))
    for x64 in (False, True):
        with jax.enable_x64(x64):
            for family, ref in _location_scale_cases(y, eta, b, b):
                fp = {k: 1 for k in family.init(jnp.float32)}
                r = mj.recipe(lambda p, x_i: x_i[0], family)
                got = r.log_prob(r.init({})._replace(family=fp), jnp.asarray(eta[:, None], jnp.float32),
                                 jnp.asarray(y, jnp.float32))
                assert got.dtype == jnp.float32, family.name
                np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=3e-6, err_msg=family.name)
    for name in _owners():
        entry = FAMILIES[name]
        fam = entry.family
        fp = fam.init(np.float32)
        if not any(np.ndim(leaf) == 0 for leaf in jax.tree.leaves(fp)):
            continue
        ints = jax.tree.map(lambda a: 1 if np.ndim(a) == 0 else a, fp)
        floats = jax.tree.map(lambda a: 1.0 if np.ndim(a) == 0 else a, fp)
        y, raw = jnp.asarray(_targets(entry, np.float32)), jnp.asarray(raw_example(fam, np.float32))
        # both in one program, the parameters closed over: the Python integers and floats the constants they are
        got, want = jax.jit(lambda: tuple(jax.vmap(fam.log_prob, in_axes=(None, None, 0))(f, raw, y)
                                          for f in (ints, floats)))()
        assert got.dtype == jnp.float32, name
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want), err_msg=name)


@pytest.mark.parametrize("half", [jnp.bfloat16, jnp.float16])
def test_half_precision_outputs_keep_float32_family_parameters(half):
    """Student t's learned df and scale in float32 with bfloat16 / float16 raw outputs and targets: the parameters
    are not rounded to the raw outputs' half precision (bfloat16 keeps 3 digits: a 6e-3 relative error of the
    NLL, 0.04 of one log-density here); the log-densities are scipy's ``t.logpdf`` at the half-precision values and the
    float32 parameters, to float32 rounding."""
    from scipy import stats
    mu = jnp.zeros(5, half)  # y - mu exact: the half-precision kernel rounds a difference of its own
    y = jnp.asarray([1.9, -2.6, 0.15, 4.4, -0.8], half)
    fp = {"df": jnp.float32(mj.links.softplus_inverse(4.3)), "scale": jnp.float32(mj.links.softplus_inverse(1.37))}
    with jax.enable_x64(True):
        df, scale = (float(mj.links.softplus.forward(jnp.asarray(fp[k], jnp.float64))) for k in ("df", "scale"))
        got = jax.vmap(mj.student_t("learned", "learned").log_prob, in_axes=(None, 0, 0))(fp, mu, y)
    ref = stats.t.logpdf(np.asarray(y, np.float64), df, np.asarray(mu, np.float64), scale)
    np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=3e-6)
    # fixed as integers, the same: a raw scale of 257 (exact in float32, 256 in bfloat16) and a df of 3
    with jax.enable_x64(True):
        got = jax.vmap(mj.student_t("learned", "learned").log_prob, in_axes=(None, 0, 0))(
            {"df": np.int32(3), "scale": np.int32(257)}, mu, y)
        df, scale = (float(mj.links.softplus.forward(jnp.float64(v))) for v in (3, 257))
    ref = stats.t.logpdf(np.asarray(y, np.float64), df, np.asarray(mu, np.float64), scale)
    np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=3e-6)


def test_custom_family_keeps_the_integer_parameters_its_init_declares():
    """A custom family whose fixed parameter ``i`` is an integer index into its raw outputs (declared by its
    ``init``) and whose ``scale`` is a real: ``i`` stays an integer (cast to a float, the index was a TypeError at
    ``mj.family``), alone and inside ``independent(..., shared=False)``; the log-densities are scipy's
    ``norm.logpdf``. An integer ``scale`` is still read as a real."""
    from scipy import stats
    normal = type(mj.normal(1.0).theta({}, jnp.float32(0.0)))
    fam = mj.family("indexed", theta=lambda fp, raw: normal(raw[fp["i"]], fp["scale"]), raw_shape=(2,),
                    init=lambda dtype: {"i": 1, "scale": jnp.asarray(1.5, dtype)})
    raw, y = jnp.asarray([0.0, 0.3], jnp.float32), jnp.float32(1.0)
    for fp, scale in (({"i": 1, "scale": jnp.float32(1.5)}, 1.5), ({"i": np.int32(1), "scale": 2}, 2.0)):
        np.testing.assert_allclose(float(fam.log_prob(fp, raw, y)), stats.norm.logpdf(1.0, 0.3, scale), rtol=1e-6)
    both = mj.independent(fam, 2, shared=False)
    fp = both.init(jnp.float32)
    got = both.log_prob(fp, jnp.asarray([[0.0, 0.3], [0.2, -0.5]], jnp.float32), jnp.asarray([1.0, 0.4], jnp.float32))
    np.testing.assert_allclose(float(got), stats.norm.logpdf([1.0, 0.4], [0.3, -0.5], 1.5).sum(), rtol=1e-6)
