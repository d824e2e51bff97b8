"""pyright (basic mode) on the package and on README's ```python blocks, as a user's editor sees them.

Each README block is written to its own file in a temporary folder and checked against the
installed package; the exit status is pyright's (non-zero on any error).
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

root = Path(__file__).resolve().parents[1]
blocks = re.findall(r"```python\n(.*?)```", (root / "README.md").read_text(), flags=re.S)
with tempfile.TemporaryDirectory() as folder:
    for index, block in enumerate(blocks):
        (Path(folder) / f"readme_block_{index}.py").write_text(block)
    command = [sys.executable, "-m", "pyright", "--pythonpath", sys.executable, str(root / "mle_jax"), folder]
    sys.exit(subprocess.run(command, cwd=root).returncode)
