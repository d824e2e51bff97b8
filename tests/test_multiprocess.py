"""Several processes: README's multi-host script, run as written on two local CPU processes joined by
``jax.distributed`` (a coordinator on localhost), each holding half of the rows of one global array.

The reference is the single-process fit and inference on all the rows. The test appends its own checks
to README's script: the value checks read each process's own rows (a NaN in process 1's rows is found
by process 1, at its index there), and fit's separation check of a Bernoulli fit gathers the verdict
of every process. It starts two Python processes that compile their programs: the deep phase."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import mle_jax as mj

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = re.search(r"```py\n(# several processes.*?)```", (ROOT / "README.md").read_text(), flags=re.S)

CHECKS = '''
# ---- tests/test_multiprocess.py's own checks, after README's script ----
bad = np.array(x_all[mine])
if jax.process_index() == 1:
    bad[3, 0] = np.nan  # row 3 of process 1's rows
try:
    r.check(jax.make_array_from_process_local_data(rows, bad), y)
    found = ""
except ValueError as error:
    found = str(error)
yb = jax.make_array_from_process_local_data(rows, (y_all[mine] > 0).astype(np.int32))
rb = mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.bernoulli())
resb = mj.fit(rb, rb.init({"w": np.zeros(3, np.float32), "b": np.float32(0.0)}), x, yb, optax.adam(0.1),
              steps=100, run=mj.Run(mesh=mesh))
np.savez(os.path.join(os.environ["OUT"], f"{jax.process_index()}.npz"), w=np.asarray(res.params.model["w"]),
         b=np.asarray(res.params.model["b"]), scale=np.asarray(res.params.family["scale"]), history=res.history,
         variance=s.variance, loglik=s.loglik, nobs=s.nobs, found=found, b_w=np.asarray(resb.params.model["w"]),
         b_stopped=str(resb.stopped), b_history=resb.history, solved_w=np.asarray(solved.model["w"]))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _reference():
    """README's script on one process: all the rows in memory, no mesh."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.5 * rng.normal(size=512)).astype(np.float32)
    r = mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.normal("learned"))
    res = mj.fit(r, r.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)}), x, y, optax.adam(0.05), steps=300)
    rb = mj.recipe(lambda p, x_i: x_i @ p["w"] + p["b"], mj.bernoulli())
    resb = mj.fit(rb, rb.init({"w": jnp.zeros(3), "b": jnp.float32(0.0)}), x, (y > 0).astype(np.int32),
                  optax.adam(0.1), steps=100)
    return res, mj.inference(r, res.params, x, y), resb


@pytest.mark.deep
def test_readme_multi_host_script_on_two_processes(tmp_path):
    assert SCRIPT is not None, "README's multi-host script (a ```py block starting '# several processes') is gone"
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT.group(1) + CHECKS)
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one CPU device per process
    env.update(JAX_PLATFORMS="cpu", COORDINATOR=f"localhost:{_free_port()}", PROCESSES="2", OUT=str(tmp_path),
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, str(script)], env={**env, "PROCESS": str(i)}, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for i, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"process {i} failed:\n{out[-4000:]}"
    assert "completed 300 steps" in outputs[0] and "model.w[1]" in outputs[0]  # README's printout
    got = [np.load(tmp_path / f"{i}.npz") for i in range(2)]
    res, s, resb = _reference()
    for g in got:  # each process holds the whole (replicated) result, equal to the single-process one
        np.testing.assert_allclose(g["w"], res.params.model["w"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g["b"], res.params.model["b"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g["scale"], res.params.family["scale"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g["history"], res.history, rtol=1e-5)
        np.testing.assert_allclose(g["variance"], s.variance, rtol=1e-4)
        np.testing.assert_allclose(float(g["loglik"]), s.loglik, rtol=1e-6)
        assert float(g["nobs"]) == s.nobs == 512
        assert str(g["b_stopped"]) == str(resb.stopped) == "completed"
        np.testing.assert_allclose(g["b_w"], resb.params.model["w"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g["b_history"], resb.history, rtol=1e-5)
        np.testing.assert_allclose(g["solved_w"], res.params.model["w"], rtol=1e-5, atol=1e-6)  # fit's steps
    assert str(got[0]["found"]) == ""  # process 0's rows are clean
    assert "index 3" in str(got[1]["found"]) and "finite" in str(got[1]["found"])
