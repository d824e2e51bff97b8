import functools
import gc
import os
import sys

import jax
import pytest

# Implicit rank promotion is the broadcasting bug mle_jax exists to prevent: make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run a test with float64 enabled."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test file, drop the compiled programs it made. Tests build fresh recipes and
    optimizers, and mle_jax keeps compiled fits in ``functools.lru_cache``s keyed on them (so a second
    fit with the same recipe does not recompile); over the whole suite those caches and JAX's own
    kept every test's programs alive and the process past 4 GB. Clearing them per file holds the
    suite under the 2 GB budget at the cost of recompiling what the next file shares."""
    yield
    release_compiled_programs()


def release_compiled_programs():
    """Clear mle_jax's ``lru_cache``s and JAX's caches (``MLE_JAX_TESTS_KEEP_CACHES=1`` keeps them)."""
    if os.environ.get("MLE_JAX_TESTS_KEEP_CACHES"):
        return
    for name, module in list(sys.modules.items()):
        if name == "mle_jax" or name.startswith("mle_jax."):
            for value in list(vars(module).values()):
                if isinstance(value, functools._lru_cache_wrapper):
                    value.cache_clear()
    jax.clear_caches()
    gc.collect()
