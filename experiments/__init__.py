"""The lecture's examples as experiments; ``python -m experiments --out DIR`` runs them all."""

from . import (
    angles, binary, counts, cross_entropy_kl, entropy, formula_data, heteroscedastic, least_squares, mixture_density,
    multiclass, multiple_outputs, own_density, rankings, real_calibration, real_glm, variance, why_logs,
)

ALL = [
    least_squares.EXPERIMENT,
    why_logs.EXPERIMENT,
    variance.EXPERIMENT,
    heteroscedastic.EXPERIMENT,
    binary.EXPERIMENT,
    multiclass.EXPERIMENT,
    multiple_outputs.EXPERIMENT,
    entropy.EXPERIMENT,
    cross_entropy_kl.EXPERIMENT,
    counts.EXPERIMENT,
    mixture_density.EXPERIMENT,
    angles.EXPERIMENT,
    real_glm.EXPERIMENT,
    formula_data.EXPERIMENT,
    real_calibration.EXPERIMENT,
    rankings.EXPERIMENT,
    own_density.EXPERIMENT,
]
