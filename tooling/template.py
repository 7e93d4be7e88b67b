"""The template: where it is and the options cookiecutter.json declares."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPTIONS: dict[str, Any] = json.loads((ROOT / "cookiecutter.json").read_text(encoding="utf-8"))
# The one list of Tekton components and their ports, shared with the pre-generation hook.
TEKTON_COMPONENTS: dict[str, int] = OPTIONS["_tekton_components"]
DEFAULT_NAME: str = OPTIONS["component_name"]
