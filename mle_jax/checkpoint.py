"""Checkpoints of a running fit, with orbax (the 'checkpoint' extra).

A checkpoint holds the whole state of the fit's scan (parameters, optimizer
state, step, the epoch's shuffle, the best validation parameters) and the loss
history so far, so a fit killed midway and started again with the same
arguments resumes from its last checkpoint and ends with the same parameters as
an uninterrupted fit.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np


def _orbax():
    try:
        import orbax.checkpoint as ocp
    except ImportError as error:  # pragma: no cover - only without the extra
        raise ImportError("checkpoints need orbax: pip install 'mle_jax[checkpoint]'") from error
    return ocp


class Checkpoints:
    """Save and restore a fit's state in ``directory`` (the newest ``keep`` are kept)."""

    def __init__(self, directory, keep: int = 2):
        ocp = _orbax()
        self._ocp = ocp
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep))

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state, history: np.ndarray) -> None:
        leaves = jax.tree_util.tree_leaves(state)
        payload = {"leaves": list(leaves), "history": np.asarray(history, np.float32)}
        self._manager.save(step, args=self._ocp.args.StandardSave(payload))
        self._manager.wait_until_finished()

    def restore(self, like_state):
        """The latest ``(state, history)``, with ``like_state``'s tree structure; None if there is none."""
        step = self.latest_step()
        if step is None:
            return None
        leaves, treedef = jax.tree_util.tree_flatten(like_state)
        # a checkpoint at step s holds the history of s steps: (loss, validation NLL) per step
        abstract = {"leaves": [self._ocp.utils.to_shape_dtype_struct(a) for a in leaves],
                    "history": jax.ShapeDtypeStruct((step, 2), np.float32)}
        restored = self._manager.restore(step, args=self._ocp.args.StandardRestore(abstract))
        return jax.tree_util.tree_unflatten(treedef, restored["leaves"]), np.asarray(restored["history"])

    def close(self) -> None:
        self._manager.close()
