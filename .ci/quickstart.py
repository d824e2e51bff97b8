"""The wheel check: run from outside the source tree, in a venv holding only the built wheel and the core
dependencies. Imports mle_jax, proves it is the installed copy, and runs README's first Python block
(the quickstart) exactly as written.

    python .ci/quickstart.py README.md
"""

import re
import sys
from pathlib import Path

import mle_jax

readme = Path(sys.argv[1]).read_text()
installed = Path(mle_jax.__file__).resolve()
if "site-packages" not in installed.parts:
    sys.exit(f"mle_jax was imported from {installed}, not from the installed wheel")
blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
if not blocks:
    sys.exit("README.md has no ```python block to run")
exec(compile(blocks[0], "README.md quickstart", "exec"), {"__name__": "__quickstart__"})
print(f"wheel check: import mle_jax from {installed.parent} and README's quickstart ran")
