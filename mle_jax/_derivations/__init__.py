"""The symbolic models behind ``mle_jax.derive`` (sympy): one small function per family kind giving
its density in terms of the model's raw outputs, its links and its own parameters, and the one
table (``table.MODELS``, keyed by the family ``Spec``'s kind) through which ``derive`` dispatches.

    symbols.py     the symbols (y[i], f[i], sigma, ...) and ``Model``, what a kind's function returns
    scalar.py      Normal, Laplace, Student t, Gamma, Beta, von Mises, Poisson, negative binomial,
                   Bernoulli, Categorical
    structured.py  mixture of Normals, ordinal, MVN (Cholesky), independent, censored
    table.py       kind -> function; a family added later joins by one entry
"""
