"""Benchmarks: mle_jax against hand-written jnp, optax, distrax, TFP-on-JAX, torch, scikit-learn and
statsmodels, timed round-robin in one process. ``python -m experiments.benchmarks --out runs/bench``."""
