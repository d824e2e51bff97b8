import jax
import pytest

# Implicit rank promotion is the broadcasting bug mle_jax exists to prevent: make it an error.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run a test with float64 enabled."""
    with jax.enable_x64(True):
        yield
