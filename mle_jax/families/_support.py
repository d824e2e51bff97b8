"""The named supports, kept where the families import them from; they live in ``distributions._support``
(a theta type registers its own support there, for the scores' target checks)."""

from ..distributions._support import (Support, angle, binary, binomial_pair, censored_pair, labels,
                                      nonnegative_integer, positive, probability, real, side, unit_interval,
                                      validate)

__all__ = ["Support", "angle", "binary", "binomial_pair", "censored_pair", "labels", "nonnegative_integer",
           "positive", "probability", "real", "side", "unit_interval", "validate"]
