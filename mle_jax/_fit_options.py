"""The options of ``fit`` in small typed groups, and the reasons a fit stops.

    fit(r, params, x, y, optax.adam(1e-2), steps=Minibatches(batch_size=32, epochs=50), key=key,
        objective=Objective(reduction="mean", tol=1e-6),
        validation=Validation(x_val, y_val, every=10, patience=5),
        run=Run(progress=Progress(callback=log), checkpoints=Checkpoints("runs/ckpt", every=100)))

Each group is checked when it is made (a ``TypeError`` / ``ValueError`` naming the group and the
field as written), before anything compiles. ``Stop`` names each outcome with its message; it is
a ``str`` enum, so ``result.stopped == "completed"`` holds. A new option is a field of one group,
read by the step (``_fit_step``) and reported in the result (``fit``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any, Callable, Literal, NamedTuple

import numpy as np


def count(owner: str, name: str, value, minimum: int = 1) -> int | None:
    """``value`` as an int >= ``minimum``, or None; a bool, a float or a string is a TypeError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{owner}: {name} must be an integer; got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}; got {value}")
    return int(value)


@dataclass(frozen=True)
class Minibatches:
    """Shuffled minibatches of ``batch_size`` examples, for ``fit(..., steps=Minibatches(...))``: a
    fresh shuffle per epoch drawn from fit's ``key``; the remainder of an epoch is dropped. Give
    exactly one of ``epochs`` (whole passes over the data) or ``steps`` (optimizer updates)."""

    batch_size: int
    epochs: int | None = None
    steps: int | None = None

    def __post_init__(self):
        count("Minibatches", "batch_size", self.batch_size)
        count("Minibatches", "epochs", self.epochs)
        count("Minibatches", "steps", self.steps)
        if (self.epochs is None) == (self.steps is None):
            raise ValueError(f"Minibatches: give exactly one of epochs or steps; got epochs={self.epochs}, "
                             f"steps={self.steps}")

    def total(self, n: int) -> int:
        """The optimizer updates over ``n`` examples: ``steps``, or ``epochs`` times the batches per epoch."""
        return self.steps if self.steps is not None else (self.epochs or 0) * (n // self.batch_size)


@dataclass(frozen=True)
class Objective:
    """What the optimizer minimises and when it has: the ``"mean"`` NLL (default; learning rates
    do not scale with N) or the ``"sum"``; converged (``Stop.CONVERGED``) when the gradient norm of
    that objective falls to ``tol`` (None: never), the remaining steps skipped, not computed."""

    reduction: Literal["mean", "sum"] = "mean"
    tol: float | None = None

    def __post_init__(self):
        if self.reduction not in ("mean", "sum"):
            raise ValueError(f"Objective: reduction must be 'mean' or 'sum'; got {self.reduction!r}")
        tol = self.tol
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer))
                                or not tol > 0):
            raise ValueError(f"Objective: tol must be a number > 0; got {tol!r}")
        if tol is not None:
            object.__setattr__(self, "tol", float(tol))


@dataclass(frozen=True)
class Validation:
    """Held-out data whose mean NLL is computed every ``every`` steps (default: total // 100; more
    than the fit's steps is refused); the fit keeps the best parameters, and stops after
    ``patience`` evaluations without improvement. A validation that keeps nothing (every NLL NaN
    or inf, or the fit stopped before the first) is said in the message (``ValidationWarning``).
    ``fit(..., validation=(x_val, y_val))`` is ``Validation(x_val, y_val)``."""

    x: Any
    y: Any
    every: int | None = None
    patience: int | None = None

    def __post_init__(self):
        count("Validation", "every", self.every)
        count("Validation", "patience", self.patience)


@dataclass(frozen=True)
class Checkpoints:
    """Save the fit's whole state with orbax in ``directory`` every ``every`` steps (None: at the
    end); a fit started again with the same arguments and directory resumes from the latest one."""

    directory: Any
    every: int | None = None

    def __post_init__(self):
        if self.directory is None:
            raise ValueError("Checkpoints: directory must be a path; got None")
        count("Checkpoints", "every", self.every)


@dataclass(frozen=True)
class Progress:
    """The host side between chunks: a tqdm bar (None: on when stderr is a terminal and the fit is
    long), the steps fused per compiled chunk (None: all, or 1/20 of them when a bar, patience or a
    callback needs the host), and ``callback(event: FitEvent)`` after every chunk."""

    bar: bool | None = None
    chunk_size: int | None = None
    callback: Callable[[FitEvent], Any] | None = None

    def __post_init__(self):
        count("Progress", "chunk_size", self.chunk_size)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"Progress: callback must be callable; got {type(self.callback).__name__}")
        if self.bar is not None and not isinstance(self.bar, (bool, np.bool_)):
            raise TypeError(f"Progress: bar must be True, False or None; got {self.bar!r}")


@dataclass(frozen=True)
class Run:
    """How the loop runs, none of which changes the fitted parameters: what it reports
    (``progress``: a ``Progress``, or a bool for the bar), where it saves and resumes
    (``checkpoints``), where it runs (``mesh``: a ``jax.sharding.Mesh``, the data split along the
    batch axis over its first axis and the parameters replicated; see ``mle_jax.sharding``) and
    the optimizer state it starts from (``opt_state``: default ``optimizer.init`` of the trained
    leaves; e.g. the ``opt_state`` of an earlier ``FitResult`` with the same optimizer and
    parameters; another tree, shape or dtype is a named ValueError)."""

    progress: Progress | bool | None = None
    checkpoints: Checkpoints | None = None
    mesh: Any = None
    opt_state: Any = None

    def __post_init__(self):
        if self.progress is None or isinstance(self.progress, (bool, np.bool_)):
            object.__setattr__(self, "progress", Progress(None if self.progress is None else bool(self.progress)))
        elif not isinstance(self.progress, Progress):
            raise TypeError(f"Run: progress must be True, False, None or Progress(...); "
                            f"got {type(self.progress).__name__}")
        if self.checkpoints is not None and not isinstance(self.checkpoints, Checkpoints):
            raise TypeError(f"Run: checkpoints must be Checkpoints(directory, every=...); "
                            f"got {type(self.checkpoints).__name__}")
        if self.mesh is not None:
            from jax.sharding import Mesh
            if not isinstance(self.mesh, Mesh):
                raise TypeError(f"Run: mesh must be a jax.sharding.Mesh; got {type(self.mesh).__name__}")

    @property
    def report(self) -> Progress:
        """``progress`` as a ``Progress`` (a bool or None was made one when the group was made)."""
        assert isinstance(self.progress, Progress)
        return self.progress


def settings(group) -> dict[str, Any]:
    """A group's fields by name (what the step reads of it, named as the user names them)."""
    return {field.name: getattr(group, field.name) for field in fields(group)}


class FitEvent(NamedTuple):
    """What the callback receives after every chunk."""

    step: int                # updates applied so far
    params: Any              # the current parameters (a Params)
    loss: float              # the latest training loss
    val_nll: float | None    # the latest validation mean NLL (None without validation)
    history: np.ndarray      # the training loss of every step so far


class Stop(str, enum.Enum):
    """Why a fit stopped; each reason has one message (``Stop.X.message(**facts)``).

    ``EXHAUSTED``: a stream of batches (``fit(r, params, batches, None, ...)``) ended before the
    steps asked for, or, with ``steps=None``, at all; the loop ran one step per batch it gave.
    ``SEPARATION`` replaces ``COMPLETED`` or ``CONVERGED`` when a discrete family's fitted model
    gives every example's label a probability above 1/2: the loss still falls as the parameters
    grow, so neither reaching the last step nor a small gradient means a maximum was found.
    ``BOUNDARY`` replaces them when a family's own positive parameter ends on its link's floor
    (``softplus(raw) <= eps``), where its raw gradient vanishes: a small gradient there is no maximum.
    Both are found on the host after the loop (no device code).
    """

    COMPLETED = "completed"
    CONVERGED = "converged"
    EARLY_STOPPING = "early_stopping"
    NON_FINITE = "non_finite"
    SEPARATION = "perfect_separation"
    EXHAUSTED = "exhausted"  # a stream of batches ended (found on the host: no device code)
    BOUNDARY = "boundary"  # a family parameter on its link's floor (found on the host: mle_jax._floors)

    def __str__(self) -> str:
        return self.value

    def message(self, **facts) -> str:
        """This reason's sentence; ``facts`` it does not use are ignored. ``steps``: the steps run,
        ``last``: the last step's index (``steps - 1``)."""
        return _MESSAGES[self].format(**facts)


_MESSAGES = {
    Stop.COMPLETED: "completed {steps} steps",
    Stop.CONVERGED: "converged at step {last}: the gradient norm fell to tol = {tol:g}",
    Stop.EARLY_STOPPING: "stopped early at step {steps}: no better validation NLL in {patience} evaluations",
    Stop.NON_FINITE: "stopped at step {last}: the loss was {loss} (not finite); returning {returned}",
    Stop.EXHAUSTED: "the stream of batches ran out after {steps} steps",
    Stop.SEPARATION: "{separation} (every example's label has fitted probability above 1/2, the smallest "
                     "{smallest:.6g}; the loss falls towards 0 as the parameters grow); the loop itself: {stopped}",
    Stop.BOUNDARY: "{boundary}: {floored}; the loop itself: {stopped}",
}

# The device loop's result codes (optimistix's RESULTS): an int32 in the loop's carry, 0 while it runs
# (and at the end of a fit that ran every step); the one table from a code to its reason.
RESULTS = (Stop.COMPLETED, Stop.CONVERGED, Stop.EARLY_STOPPING, Stop.NON_FINITE)


def code(stop: Stop) -> int:
    """The device loop's code for ``stop``."""
    return RESULTS.index(stop)
