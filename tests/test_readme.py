"""README's Python examples run as written."""

import re
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


# the slowest blocks (a checkpointed minibatch fit, a float64 GLM's inference, the flax and equinox models: 4-7 s
# each; the bootstrap's 200 vmapped L-BFGS refits: 7.3 s of compiling, 8.8 s of CPU, where test_bootstrap.py's
# checks of mj.bootstrap are deep too) run in CI's deep phase
HEAVY = {i for i, block in enumerate(BLOCKS)
         if any(s in block for s in ("Checkpoints(", "enable_x64", "import flax", "from flax", "import equinox",
                                     "mj.bootstrap("))}


@pytest.mark.parametrize("index", [pytest.param(i, marks=pytest.mark.deep) if i in HEAVY else i
                                   for i in range(len(BLOCKS))])
def test_readme_example_runs(index):
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), {})
