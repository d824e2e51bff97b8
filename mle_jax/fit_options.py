"""The options of ``fit`` in small typed groups, and the reasons a fit stops.

    fit(r, params, x, y, optax.adam(1e-2), steps=500,
        minibatches=Minibatches(batch_size=32),
        validation=Validation(x_val, y_val, every=10, patience=5),
        checkpoints=Checkpoints("runs/ckpt", every=100),
        progress=Progress(bar=True, callback=log))

Each group is checked when it is made (a named ``TypeError`` / ``ValueError``),
before anything compiles. ``Stop`` names each outcome with its message; it is a
``str`` enum, so ``result.stopped == "completed"`` holds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np


def count(name: str, value, minimum: int = 1):
    """``value`` as an int >= ``minimum``, or None; a bool, a float or a string is a TypeError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"fit: {name} must be an integer; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"fit: {name} must be >= {minimum}; got {value}")
    return int(value)


@dataclass(frozen=True)
class Minibatches:
    """Shuffled minibatches of ``batch_size`` examples: a fresh shuffle per epoch drawn from fit's
    ``key``; the remainder of an epoch is dropped. ``epochs`` replaces fit's ``steps``."""

    batch_size: int
    epochs: int | None = None

    def __post_init__(self):
        count("batch_size", self.batch_size)
        count("epochs", self.epochs)


@dataclass(frozen=True)
class Validation:
    """Held-out data whose mean NLL is computed every ``every`` steps (default: total // 100; more
    than the fit's steps is refused); the fit keeps the best parameters, and stops after
    ``patience`` evaluations without improvement. A validation that keeps nothing (every NLL NaN
    or inf, or the fit stopped before the first) is said in the message (``ValidationWarning``)."""

    x: Any
    y: Any
    every: int | None = None
    patience: int | None = None

    def __post_init__(self):
        count("eval_every", self.every)
        count("patience", self.patience)


@dataclass(frozen=True)
class Checkpoints:
    """Save the fit's whole state with orbax in ``directory`` every ``every`` steps (None: at the
    end); a fit started again with the same arguments and directory resumes from the latest one."""

    directory: Any
    every: int | None = None

    def __post_init__(self):
        if self.directory is None:
            raise ValueError("fit: checkpoints need a directory (checkpoint_dir)")
        count("checkpoint_every", self.every)


@dataclass(frozen=True)
class Progress:
    """The host side between chunks: a tqdm bar (None: on when stderr is a terminal and the fit is
    long), the steps fused per compiled chunk (None: all, or 1/20 of them when a bar, patience or a
    callback needs the host), and ``callback(event: FitEvent)`` after every chunk."""

    bar: bool | None = None
    chunk_size: int | None = None
    callback: Callable | None = None

    def __post_init__(self):
        count("chunk_size", self.chunk_size)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"fit: callback must be callable; got {type(self.callback).__name__}")
        if self.bar is not None and not isinstance(self.bar, (bool, np.bool_)):
            raise TypeError(f"fit: progress must be True, False or None; got {self.bar!r}")


class FitEvent(NamedTuple):
    """What the callback receives after every chunk."""

    step: int                # updates applied so far
    params: Any              # the current parameters (a Params)
    loss: float              # the latest training loss
    val_nll: float | None    # the latest validation mean NLL (None without validation)
    history: np.ndarray      # the training loss of every step so far


class Stop(str, enum.Enum):
    """Why a fit stopped; each reason has one message (``Stop.X.message(**facts)``).

    ``SEPARATION`` replaces ``COMPLETED`` or ``CONVERGED`` when a discrete family's fitted model
    gives every example's label a probability above 1/2: the loss still falls as the parameters
    grow, so neither reaching the last step nor a small gradient means a maximum was found.
    """

    COMPLETED = "completed"
    CONVERGED = "converged"
    EARLY_STOPPING = "early_stopping"
    NON_FINITE = "non_finite"
    SEPARATION = "perfect_separation"

    def __str__(self) -> str:
        return self.value

    def message(self, **facts) -> str:
        return _MESSAGES[self].format(**facts)


_MESSAGES = {
    Stop.COMPLETED: "completed {steps} steps",
    Stop.CONVERGED: "converged at step {step}: the gradient norm fell to tol = {tol:g}",
    Stop.EARLY_STOPPING: "stopped early at step {step}: no better validation NLL in {patience} evaluations",
    Stop.NON_FINITE: "stopped at step {step}: the loss was {loss} (not finite); returning {returned}",
    Stop.SEPARATION: "{separation} (every example's label has fitted probability above 1/2, the smallest "
                     "{smallest:.6g}; the loss falls towards 0 as the parameters grow); the loop itself: {stopped}",
}

LEGACY = ("epochs", "batch_size", "eval_every", "patience", "chunk_size", "callback", "checkpoint_dir",
          "checkpoint_every")


def groups(minibatches, validation, checkpoints, progress, legacy: dict):
    """The option groups from fit's arguments, today's flat keywords folded in."""
    unknown = sorted(set(legacy) - set(LEGACY))
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}")
    get = legacy.get
    if get("batch_size") is not None or get("epochs") is not None:
        if minibatches is not None:
            raise TypeError("fit: give minibatches=Minibatches(...) or batch_size/epochs, not both")
        if get("batch_size") is None:
            raise ValueError("fit: epochs needs a batch_size; full-batch fits count steps")
        minibatches = Minibatches(legacy["batch_size"], get("epochs"))
    if validation is not None and not isinstance(validation, Validation):
        if not isinstance(validation, (tuple, list)) or len(validation) != 2:
            raise TypeError("fit: validation must be Validation(x_val, y_val, ...) or a pair (x_val, y_val)")
        validation = Validation(*validation, every=get("eval_every"), patience=get("patience"))
    elif get("eval_every") is not None or get("patience") is not None:
        if validation is None:
            raise ValueError("fit: eval_every and patience need validation=(x_val, y_val)")
        raise TypeError("fit: give every and patience inside Validation(...), not as keywords")
    if get("checkpoint_dir") is not None or get("checkpoint_every") is not None:
        if checkpoints is not None:
            raise TypeError("fit: give checkpoints=Checkpoints(...) or checkpoint_dir/checkpoint_every, not both")
        if get("checkpoint_dir") is None:
            raise ValueError("fit: checkpoint_every needs a checkpoint_dir")
        checkpoints = Checkpoints(get("checkpoint_dir"), get("checkpoint_every"))
    if progress is None or isinstance(progress, (bool, np.bool_)):
        progress = Progress(None if progress is None else bool(progress), get("chunk_size"), get("callback"))
    elif not isinstance(progress, Progress):
        raise TypeError(f"fit: progress must be True, False, None or Progress(...); got {type(progress).__name__}")
    elif get("chunk_size") is not None or get("callback") is not None:
        raise TypeError("fit: give chunk_size and callback inside Progress(...), not as keywords")
    return minibatches, validation, checkpoints, progress
