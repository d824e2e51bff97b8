"""Checkpoints of a running fit, with orbax (the 'checkpoint' extra).

A checkpoint holds the whole state of the fit's loop (trained and carried
parameters, optimizer state, step, the epoch's shuffle, the best validation
parameters) and the loss history so far, so a fit killed midway and started
again with the same arguments resumes from its last checkpoint and ends with
the same parameters as an uninterrupted fit.

Beside the step directories, ``mle_jax_state.json`` records the shapes and
dtypes of the state's arrays: a checkpoint of another fit (another model shape,
another optimizer) is refused with one sentence saying so, as is one that orbax
cannot read, each naming how to start afresh.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

SIGNATURE = "mle_jax_state.json"


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as error:  # pragma: no cover - only without the extra
        raise ImportError("checkpoints need orbax: pip install 'mle_jax[checkpoint]'") from error
    return ocp


def _is_key(a) -> bool:
    return jnp.issubdtype(a.dtype, jax.dtypes.prng_key)


def _storable(a):
    """Typed PRNG keys are stored as their raw data."""
    return jax.random.key_data(a) if _is_key(a) else a


def _signature(leaves) -> list:
    return [f"{tuple(np.shape(b))} {np.dtype(b.dtype).name}" for b in map(_storable, leaves)]


class Store:
    """Save and restore a fit's state in ``directory`` (the newest ``keep`` are kept)."""

    def __init__(self, directory, keep: int = 2):
        self.directory = Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"fit: Checkpoints directory {self.directory} is a file, not a directory; "
                             f"pass a directory (a new one starts afresh)")
        ocp = _orbax()
        self._ocp = ocp
        self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep))

    def steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def save(self, step: int, state, history: np.ndarray) -> None:
        leaves = jax.tree_util.tree_leaves(state)
        payload = {"leaves": [_storable(a) for a in leaves], "history": np.asarray(history, np.float32)}
        self._manager.save(step, args=self._ocp.args.StandardSave(payload))
        self._manager.wait_until_finished()
        (self.directory / SIGNATURE).write_text(json.dumps(_signature(leaves)))

    def restore(self, like_state, step: int | None = None):
        """``(step, state, history)`` of checkpoint ``step`` (default the latest), with ``like_state``'s
        tree structure; None if there is none. A checkpoint of another fit is a ValueError."""
        steps = self.steps()
        if step is None:
            if not steps:
                return None
            step = steps[-1]
        leaves, treedef = jax.tree_util.tree_flatten(like_state)
        self._check_signature(step, leaves)
        # a checkpoint at step s holds the history of s steps: (loss, validation NLL) per step
        abstract = {"leaves": [jax.ShapeDtypeStruct(np.shape(b), b.dtype) for b in map(_storable, leaves)],
                    "history": jax.ShapeDtypeStruct((step, 2), np.float32)}
        try:
            restored = self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
        except Exception as error:  # orbax / tensorstore say it in their own words: say it in ours
            reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
            raise self._refusal(step, f"it cannot be read ({type(error).__name__}: {reason})") from error
        values = [jax.random.wrap_key_data(r, impl=jax.random.key_impl(a)) if _is_key(a) else r
                  for a, r in zip(leaves, restored["leaves"])]
        return step, jax.tree_util.tree_unflatten(treedef, values), np.asarray(restored["history"])

    def _check_signature(self, step: int, leaves) -> None:
        path = self.directory / SIGNATURE
        try:
            saved = json.loads(path.read_text())
        except (OSError, ValueError):
            raise self._refusal(step, f"its {SIGNATURE} is missing or unreadable") from None
        mine = _signature(leaves)
        if saved != mine:
            first = next((i for i, (a, b) in enumerate(zip(saved, mine)) if a != b), min(len(saved), len(mine)))
            raise self._refusal(step, f"it was written by another fit (another model shape or optimizer: "
                                      f"its state has {len(saved)} arrays, this fit's {len(mine)}; "
                                      f"they first differ at array {first})")

    def _refusal(self, step: int, reason: str) -> ValueError:
        return ValueError(f"fit: cannot resume from the checkpoint at step {step} in {self.directory}: {reason}; "
                          f"delete that directory or pass another Checkpoints directory to start afresh")

    def close(self) -> None:
        self._manager.close()
