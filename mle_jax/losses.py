"""Per-example negative log-likelihoods on raw model outputs, called as optax's losses are.

    mj.losses.categorical(logits, labels)            logits (N, K), integer labels (N,)    -> (N,)
    mj.losses.bernoulli(logits, labels)              logits (N,), labels (N,) in {0, 1}
    mj.losses.normal(mu, y, scale=0.5)               sigma fixed: (y - mu)^2 / (2 sigma^2) + log sigma + log(2 pi)/2
    mj.losses.normal(raw, y, scale="softplus")       raw (N, 2) = (mu, raw scale), sigma = softplus + eps
    mj.losses.normal(mu, y, scale=sigma)             sigma an array: learned in your own step, or known per example
    mj.losses.nll(family, raw, y, fparams)           any family, e.g. with the family parameters a recipe trained

There is one function per family of ``mle_jax.families.FAMILIES``, generated from it: the family's
constructor options are its keyword options, less the sizes read from the shapes (K from the
logits); its docstring is the constructor's. Each is ONE generic per-example term,
``-family.log_prob(fparams, raw_i, y_i)`` (or ``family.training.term`` where the family trains on
something else), ``vmap``-ed over the leading axis: the families' own fused, stable forms
(log-sigmoid logits, gathered log-softmax, ``log sigma`` straight from the link), so the values and
gradients are the recipe's, term by term.
The result has shape (N,); reduce it as you like (``jnp.mean``, or ``mj.reduce_terms`` for
weights and masks). Nothing is jitted here: call these inside your own ``jit``/``grad``. To drop rows (padding,
missing targets) pass ``mask=`` (N,) booleans: a dropped row's term is 0 and so is its every derivative, whatever its
target. A select after the loss would take a dropped row's value away but not its derivative: where a masked-out
target is NaN or off the support, its term's derivative can be NaN and ``0 * NaN`` makes the gradient NaN; ``mask=``
puts a target on the support in those rows first, as ``Recipe.nll(..., mask=)`` does.

Shapes are checked on every call and never broadcast: ``raw`` must be ``(N, *raw_shape)`` (a
``(N, 1)`` raw is accepted where the family takes one value, as the recipe accepts a model's
``(1,)`` output) and ``y`` exactly ``(N, *event_shape)``; anything else is a ValueError showing
both shapes (a ``(N, 1)`` target against ``(N,)`` logits is the bug that makes an ``(N, N)``
loss elsewhere). Target values (labels in ``[0, K)``, counts, ...) are checked with the
family's rules when they are concrete; inside a trace their values cannot be read and are not
(nor with ``validate=False``): there an impossible target (a label 2 for ``bernoulli``, -1 or K
for ``categorical``, a count 2.5) has NLL ``+inf``, as the theta's ``log_prob`` is ``-inf``.

Family-owned parameters are explicit keyword arguments in natural units: a Python number is a
fixed setting (``scale=0.5``, ``df=4.0``); an array, traced or not, is a value you learn or know
yourself (``scale=jax.nn.softplus(params["s"])``, of shape () or one per example (N,)). An array
value enters the family's own "learned" form through the inverse of its link (softplus + eps),
so it must exceed the floor ``eps = finfo(dtype).eps`` (an eager value below it is a ValueError, a
traced one gives NaN). ``mj.losses.nll`` takes a family and its parameters in the family's raw form
instead (``params.family`` of a recipe). In your own jitted step, with a learned global sigma:

    def loss_fn(params, x, y):
        mu = model(params["net"], x)                                   # (N,)
        return jnp.mean(mj.losses.normal(mu, y, scale=jax.nn.softplus(params["s"])))

    grads = jax.jit(jax.grad(loss_fn))(params, x, y)                   # then optax as usual

Precision follows raw: bfloat16 in, bfloat16 out, computed in float32 (a scale in raw with float32's link
floor, ``sigma = softplus + 1.2e-7``; a parameter given in bfloat16 keeps its own dtype's) and rounded once;
cast raw to float32 first for a float32 loss.

Example (the values: ``log 2``, ``softplus(2)``; ``1/2 + log(2 pi)/2``, ``log(2 pi)/2``; ``log 3``):

    >>> import jax.numpy as jnp, mle_jax as mj
    >>> mj.losses.bernoulli(jnp.array([0.0, 2.0]), jnp.array([1, 0]))
    Array([0.6931472, 2.126928 ], dtype=float32)
    >>> mj.losses.normal(jnp.array([0.0, 1.0]), jnp.array([1.0, 1.0]), scale=1.0)
    Array([1.4189385, 0.9189385], dtype=float32)
    >>> mj.losses.categorical(jnp.zeros((1, 3)), jnp.array([2]))
    Array([1.0986123], dtype=float32)

Reference: Prince, *Understanding Deep Learning*, ch. 5; optax ``losses`` for the calling style.
"""

from ._losses import family_loss as _family_loss
from ._losses import loss, nll

# one function per family of mle_jax.families.FAMILIES (tests/test_losses.py checks the two agree)
normal = _family_loss("normal")
laplace = _family_loss("laplace")
asymmetric_laplace = _family_loss("asymmetric_laplace")
student_t = _family_loss("student_t")
mixture_normal = _family_loss("mixture_normal")
gamma = _family_loss("gamma")
beta = _family_loss("beta")
bernoulli = _family_loss("bernoulli")
categorical = _family_loss("categorical")
ordinal = _family_loss("ordinal")
poisson = _family_loss("poisson")
negative_binomial = _family_loss("negative_binomial")
von_mises = _family_loss("von_mises")
mvn_cholesky = _family_loss("mvn_cholesky")
independent = _family_loss("independent")
censored = _family_loss("censored")
dirichlet = _family_loss("dirichlet")
plackett_luce = _family_loss("plackett_luce")
exponential = _family_loss("exponential")
weibull = _family_loss("weibull")
log_normal = _family_loss("log_normal")
binomial = _family_loss("binomial")
zero_inflated = _family_loss("zero_inflated")

__all__ = [
    "asymmetric_laplace", "bernoulli", "beta", "categorical", "censored", "gamma", "independent", "laplace", "loss",
    "mixture_normal", "mvn_cholesky", "negative_binomial", "nll", "normal", "ordinal", "poisson",
    "student_t", "von_mises",
    "binomial", "dirichlet", "exponential", "log_normal", "plackett_luce", "weibull", "zero_inflated",
]
