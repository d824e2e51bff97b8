"""Shared fixtures, and the suite's memory budget (README, "Continuous integration").

This file is read by pytest's controller process as well as by each xdist worker. The controller
runs no test, so nothing here imports JAX at module level: ``pytest_configure`` imports and
configures it only in the processes that run tests (the controller stays at about 55 MB).
"""

import ctypes
import ctypes.util
import functools
import gc
import os
import shutil
import sys
import tempfile

import pytest

# After a test that leaves a worker above this resident size, the freed heap is handed back, and if
# that is not enough, the compiled programs are released at once rather than at the end of the file.
RELEASE_ABOVE_MB = 600
# ... once it has grown by this much since the last release: a trim scans the whole heap (a few tenths of
# a second in a worker of 600 MB and more), so trimming after every test cost more than the tests did
GROWTH_MB = 60
_after_release = [0.0]  # this process's resident MB after its last release


def pytest_configure(config):
    """In each process that runs tests, implicit rank promotion (the broadcasting bug mle_jax exists
    to prevent) is an error, set before any test module is collected.

    The processes share JAX's persistent compilation cache: one folder, made by the first process and
    removed when it ends (or ``MLE_JAX_TESTS_CACHE_ROOT``'s, kept: CI's deep phase reads what README's
    suite compiled). A program recompiled after the caches are released, or compiled already by the other
    worker, is read back instead of compiled again (test_distributions.py: 43 s -> 36 s in one process;
    the deep checks of test_incomplete_slopes.py on two workers: 169 s -> 118 s of CPU). An entry read
    while another process still writes it fails to decompress, which only means a compile (the warning
    is ignored in pyproject.toml); a cache hit is no backend compile, so ``compiles()`` counts only the
    compiles a block really does, and the tests assert only that none happens."""
    root = os.environ.get("MLE_JAX_TESTS_CACHE_ROOT")
    if root is None:
        root = tempfile.mkdtemp(prefix="mle_jax-tests-")
        os.environ["MLE_JAX_TESTS_CACHE_ROOT"] = root  # the xdist workers inherit it
        config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        import jax

        jax.config.update("jax_numpy_rank_promotion", "raise")
        jax.config.update("jax_compilation_cache_dir",
                          os.path.join(root, "shared"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# README's suite stays under 5 minutes on the 2-core machine (session 49 read 302-305 s): these checks' float64
# parametrisations run in CI's deep phase (``python -m pytest -m deep``, every CI run), while their float32 siblings,
# which take the same code paths in the dtype with less room, run here (51 s of the suite's CPU)
FLOAT64_IN_DEEP = frozenset({
    "test_beta_cdfs_large_concentrations_match_scipy",  # test_s47_num.py
    "test_beta_entropy_near_uniform_relative",  # test_s47_num.py
    "test_beta_upper_tail_at_targets_below_epsilon",  # test_distributions_edges.py
    "test_ordinal_kernel_value_gradient_hessian",  # test_discrete_speed_forms.py
    "test_value_gradient_and_hessian_against_the_cumulative_logsumexp",  # test_plackett_luce_chain.py
    "test_temme_expansion_does_not_cancel_huge_exponents",  # test_special_extremes.py
    "test_gamma_uses_log_rate_plus_log_y",  # test_special_extremes.py
    "test_quantile_isf_and_moments_against_scipy",  # test_survival.py
    "test_categorical_hessian_where_a_class_is_near_certain",  # test_categorical_hessian.py
    "test_binomial_entropy_matches_scipy",  # test_binomial_entropy.py
    "test_against_scipy",  # test_dirichlet.py
    "test_score_and_hessian_against_scipy",  # test_dirichlet.py
    "test_student_t_family_kernels_at_extremes_against_mpmath",  # test_family_kernels.py
    "test_scale_family_kls_against_mpmath",  # test_kl_scales.py
    "test_quantile_and_isf_match_scipy_in_both_tails_float64",  # test_quantiles.py (its Gamma stays: FLOAT64_KEPT)
    "test_functions_against_references",  # test_properties.py
    "test_mixture_mode_on_a_flat_top",  # test_distributions_beyond.py
    "test_ordinal_is_finite_with_finite_gradients_at_any_score",  # test_families_classification.py
    "test_ordinal_evaluated_alone_is_the_differentiated_value_bit_for_bit",  # test_families_classification.py
    "test_ordinal_hessian_where_the_observed_class_is_far_off",  # test_audit_wave10.py
    "test_ordinal_kernel_off_the_labels",  # test_discrete_speed_forms.py
    "test_count_hessians_at_logit_zero",  # test_slopes_at_ties.py
    "test_censored_normal_written_derivatives_against_scipy",  # test_tails_speed_forms.py
    "test_gamma_glm_density_and_score_against_mpmath",  # test_split_kernels.py
    "test_log_density_matches_scipy",  # test_from_density.py
    "test_beta_far_tail_huge_concentrations_is_finite",  # test_s47_num.py
})
# ... but these, whose float32 sibling does not exist (the Gamma's float32 quantiles are a deep check of their own)
FLOAT64_KEPT = frozenset({"test_quantile_and_isf_match_scipy_in_both_tails_float64[Gamma]"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """``FLOAT64_IN_DEEP``'s float64 parametrisations are marked ``deep`` before ``-m`` selects (tryfirst)."""
    for item in items:
        if (getattr(item, "originalname", None) in FLOAT64_IN_DEEP and "float64" in item.name
                and item.name not in FLOAT64_KEPT):
            item.add_marker(pytest.mark.deep)


def pytest_collection_finish(session):
    """What the collection made (the imported libraries, the test modules and their tables: about 265,000
    objects) lives as long as the process: moved out of the collector's reach (``gc.freeze``), so that a
    full collection, each release's and Python's own, scans only what the tests made since (0.12 s a
    collection before, under a millisecond after)."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _mpmath_precision():
    """A test that sets mpmath's working precision (``mp.mp.dps = 30``) sets it for itself only: the
    precision the reference modules set at import comes back after it (a later test's 40-digit
    reference was once computed at 30 digits in a one-process run)."""
    mp = sys.modules.get("mpmath")
    saved = mp.mp.dps if mp is not None else None
    yield
    if mp is not None:
        mp.mp.dps = saved


@pytest.fixture
def x64():
    """Run a test with float64 enabled."""
    import jax

    with jax.enable_x64(True):
        yield


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """After each test file, drop the compiled programs it made and hand the freed memory back.

    Tests build fresh recipes and optimizers, and JAX keeps every program it compiled (eager
    operations included) in caches that live as long as the process. Clearing them frees the
    programs, but glibc's allocator keeps the freed pages in its arenas, so the process does not
    shrink until ``malloc_trim`` returns them (measured on the equivalence checks: 868 MB, still
    868 MB after clearing the caches, 287 MB after the trim)."""
    yield
    release_compiled_programs()


@pytest.fixture(autouse=True)
def _release_when_large():
    """A compile's working memory is freed when it ends but stays in the heap: trimming returns it
    without losing the programs; only a worker still over budget recompiles what comes next."""
    yield
    now = resident_mb()
    if now > RELEASE_ABOVE_MB and now > _after_release[0] + GROWTH_MB:
        trim_heap()
        if resident_mb() > RELEASE_ABOVE_MB:
            release_compiled_programs()
        _after_release[0] = resident_mb()


def resident_mb() -> float:
    """This process's resident memory (0 where /proc is missing: then nothing is released early)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def release_compiled_programs():
    """Clear mle_jax's ``lru_cache``s and JAX's caches, collect, and return the freed pages to the
    operating system (``MLE_JAX_TESTS_KEEP_CACHES=1`` keeps everything)."""
    if os.environ.get("MLE_JAX_TESTS_KEEP_CACHES"):
        return
    for name, module in list(sys.modules.items()):
        if name == "mle_jax" or name.startswith("mle_jax."):
            for value in list(vars(module).values()):
                if isinstance(value, functools._lru_cache_wrapper):
                    value.cache_clear()
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()
    trim_heap()
    _after_release[0] = resident_mb()


@functools.lru_cache(maxsize=1)
def _libc():
    """The C library, looked up once (``find_library`` runs ``ldconfig``); None where it is missing."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def trim_heap() -> None:
    """glibc's ``malloc_trim(0)``: give the allocator's free pages back (a no-op elsewhere)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)
