"""``count * log sig(+-z)`` where ``exp(-|z|)`` leaves the normal floats (``special.count_log_sigmoid``): the CPU
flushed ``log sig(87.35) = -1.2e-38`` to 0 in float32, so ``Binomial(1e14, logits=-87.35).log_prob(0)`` was 0, not
``-1.2e-24``. Reference: mpmath at 50 digits, ``log C(n, y) + y log sig(z) + (n - y) log sig(-z)`` (and the
negative binomial's ``r log sig(-z)`` at y = 0), for float32 and float64 inputs."""

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from mle_jax.distributions import Binomial, NegativeBinomial, binomial, log_prob

pytestmark = pytest.mark.deep  # the binomial and negative binomial programs compile for seconds

TAILS = {jnp.float32: [-87.35, -88.0, -90.0, -100.0, -120.0, -150.0], jnp.float64: [-708.5, -709.5, -715.0, -720.0]}
COUNTS = [5.0, 1e6, 1e14, 3e30]


def _log_sig(z):
    return -mpmath.log1p(mpmath.exp(-z))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=lambda d: d.__name__)
def test_a_count_times_a_far_tail_log_sigmoid_is_mpmaths(dtype, x64):
    mpmath.mp.dps = 50
    info = np.finfo(dtype)
    z, n = (np.array(v, dtype) for v in zip(*[(z, n) for z in TAILS[dtype] for n in COUNTS]))
    zero, cases = np.zeros_like(n), []
    # y = 0 at logit z, y = n at logit -z (the mirror), the negative binomial's y = 0 at logit z
    cases.append((log_prob(Binomial(jnp.asarray(n), jnp.asarray(z)), jnp.asarray(zero)), z, n))
    cases.append((log_prob(Binomial(jnp.asarray(n), jnp.asarray(-z)), jnp.asarray(n)), z, n))
    cases.append((log_prob(NegativeBinomial(jnp.asarray(n), jnp.asarray(z)), jnp.asarray(zero)), z, n))
    for got, zs, ns in cases:
        got = np.asarray(got, np.float64)
        for g, zi, ni in zip(got, zs, ns):
            ref = float(mpmath.mpf(float(ni)) * _log_sig(-mpmath.mpf(float(zi))))  # n log sig(-z) = n log(1 - pi)
            if abs(ref) >= info.tiny:  # a normal float: to a few roundings (three products, one exp)
                assert abs(g - ref) <= 4 * info.eps * abs(ref), (zi, ni, g, ref)
            else:  # below the normal floats: 0 or a subnormal, never more
                assert g <= 0 and abs(g) < info.tiny, (zi, ni, g, ref)
    normal = [abs(float(mpmath.mpf(float(ni)) * _log_sig(-mpmath.mpf(float(zi))))) >= info.tiny for zi, ni in zip(z, n)]
    assert sum(normal) >= 8  # the sweep reaches the normal range it tests


def test_inside_the_normal_range_the_values_are_the_plain_products(x64):
    """Just inside the threshold (z = -87 in float32) the old form is kept: within a rounding of mpmath too."""
    mpmath.mp.dps = 50
    for z in (-87.0, -80.0, -30.0):
        got = float(log_prob(Binomial(jnp.float32(1e14), jnp.float32(z)), jnp.float32(0.0)))
        ref = float(mpmath.mpf(1e14) * _log_sig(-mpmath.mpf(float(np.float32(z)))))
        assert abs(got - ref) <= 4 * float(np.finfo(np.float32).eps) * abs(ref)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64], ids=lambda d: d.__name__)
def test_the_cut_itself_is_inside_the_tail(dtype, x64):
    """At the floats around ``-log(tiny)`` (``log(tiny)`` rounded to the dtype: float32 87.33655, where ``exp(-z)``
    is subnormal, was outside the tail and gave 0) and around the cut ``-log(2 tiny)``, the value of
    ``Binomial(1e14, -z).log_prob(0)`` is mpmath's ``-1e14 log1p(e^-z)`` to 4 eps."""
    mpmath.mp.dps = 50
    info = np.finfo(dtype)
    centres = [np.array(-np.log(info.tiny), dtype), np.array(-np.log(2 * info.tiny), dtype)]
    zs = []
    for c in centres:
        below, above = c, c
        for _ in range(3):
            below, above = np.nextafter(below, dtype(0)), np.nextafter(above, dtype(1e4))
            zs += [below, above]
        zs.append(c)
    z = np.array(zs, dtype)
    n = np.full_like(z, 1e14)
    got = np.asarray(log_prob(Binomial(jnp.asarray(n), jnp.asarray(-z)), jnp.zeros_like(jnp.asarray(n))))
    want = np.array([float(-mpmath.mpf(1e14) * mpmath.log1p(mpmath.exp(-mpmath.mpf(float(v))))) for v in z])
    assert np.all(np.abs(got - want) <= 4 * info.eps * np.abs(want)), (z, got, want)
