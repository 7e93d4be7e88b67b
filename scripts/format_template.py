"""Format the template's Python with ruff, through a bake.

The template's files hold Jinja, so ruff cannot run on them directly. This
bakes the defaults, runs `ruff check --fix` and `ruff format` on the bake,
and copies each fixed file back when its template source has no Jinja in it
(the few templated files are reported, to be fixed by hand).

Run from the repository root: `python -m scripts.format_template` (`make format`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tooling import DEFAULT_NAME, ROOT, bake

TEMPLATE_DIR = ROOT / "{{cookiecutter.component_name}}"


def has_jinja(path: Path) -> bool:
    text = path.read_text()
    return "{{" in text or "{%" in text


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for event_bus in ("memory", "redis"):
            project = bake(Path(tmp) / event_bus, {"event_bus": event_bus})
            before = {path: path.read_bytes() for path in project.rglob("*.py")}
            subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "--quiet", "."], cwd=project, check=False)
            subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", "."], cwd=project, check=True)
            for baked in project.rglob("*.py"):
                relative = baked.relative_to(project)
                source = TEMPLATE_DIR / Path(
                    *["{{cookiecutter.component_name}}" if part == DEFAULT_NAME else part for part in relative.parts]
                )
                if not source.exists() or before.get(baked) == baked.read_bytes():
                    continue  # ruff left it alone
                if has_jinja(source):
                    print(f"needs formatting by hand: {source.relative_to(ROOT)}")
                else:
                    shutil.copyfile(baked, source)
                    print(f"formatted: {source.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
