"""Data-parallel placement with JAX's own sharding: the batch axis split over a device mesh.

``fit(..., run=Run(mesh=mesh))`` places x, y (and weights, masks, validation data) with
``NamedSharding(mesh, P(axis))`` along their leading axis and replicates the
parameters and optimizer state; the jitted scan then runs SPMD on every device
and XLA reduces the gradient across them. Arrays already sharded along the
batch axis are used as they are. On several hosts call
``jax.distributed.initialize()`` first and build the mesh from ``jax.devices()``.
"""

from __future__ import annotations

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def batch_mesh(devices=None, axis: str = "batch") -> Mesh:
    """A one-axis mesh over ``devices`` (default: every device JAX sees)."""
    devices = jax.devices() if devices is None else list(devices)
    import numpy as np
    return Mesh(np.array(devices), (axis,))


def shard_batch(mesh: Mesh, tree, axis: str | None = None):
    """Place every leaf of ``tree`` split along its leading axis over ``mesh``."""
    axis = axis or mesh.axis_names[0]
    size = mesh.shape[axis]

    def put(a):
        if a is None:
            return None
        if a.shape[0] % size:
            raise ValueError(f"sharding: the batch axis ({a.shape[0]} examples) must divide evenly over "
                             f"{size} devices; drop or pad {a.shape[0] % size} examples")
        spec = PartitionSpec(axis, *([None] * (a.ndim - 1)))
        return jax.device_put(a, NamedSharding(mesh, spec))
    return jax.tree_util.tree_map(put, tree)


def replicate(mesh: Mesh, tree):
    """Place every leaf of ``tree`` whole on every device of ``mesh``."""
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, NamedSharding(mesh, PartitionSpec())), tree)
