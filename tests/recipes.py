"""The generated README's recipes, applied to a bake exactly as written.

A recipe is a code block in the README preceded by a marker naming the file
it goes in and where: `<!-- recipe PATH: end -->`, `<!-- recipe PATH: after
"LINE" -->`, `<!-- recipe PATH: before "LINE" -->` (LINE is a whole line of
the file), or `<!-- recipe PATH: end of class NAME -->` (the block shows
`class NAME:` and `...` for context; the rest becomes the end of the class,
which must be the last thing in the file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_MARKER = re.compile(
    r'<!-- recipe (?P<path>\S+): (?P<where>end of class \w+|end|after "(?P<after>.*?)"|before "(?P<before>.*?)") -->\n'
    r"```\w*\n(?P<code>.*?)```",
    re.S,
)


@dataclass(frozen=True)
class Recipe:
    path: str
    where: str
    code: str


def recipes(readme: str) -> list[Recipe]:
    return [Recipe(match["path"], match["where"], match["code"]) for match in _MARKER.finditer(readme)]


def _insert(text: str, anchor: str, code: str, after: bool) -> str:
    lines = text.splitlines(keepends=True)
    matches = [index for index, line in enumerate(lines) if line.rstrip("\n") == anchor]
    if not matches:
        raise AssertionError(f"the recipe's anchor line {anchor!r} is not in the file")
    index = matches[0] + 1 if after else matches[0]
    top_level = not code.startswith((" ", "from ", "import "))
    lines[index:index] = [code + ("\n\n" if top_level and not after else "")]
    return "".join(lines)


def apply(project: Path, recipe: Recipe) -> None:
    target = project / recipe.path
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    python = target.suffix == ".py"
    if recipe.where.startswith("end of class "):
        header, _, body = recipe.code.partition("    ...\n")
        if header.strip() != f"class {recipe.where.removeprefix('end of class ')}:":
            raise AssertionError(f"the recipe for {recipe.where} does not show its class: {header!r}")
        text = text.rstrip("\n") + "\n" + body
    elif recipe.where == "end":
        separator = "\n\n\n" if python else "\n\n"
        text = (text.rstrip("\n") + separator if text else "") + recipe.code
    else:
        after = recipe.where.startswith("after")
        anchor = recipe.where.partition('"')[2].removesuffix('"')
        text = _insert(text, anchor, recipe.code, after)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def apply_all(project: Path) -> list[Recipe]:
    """Apply every recipe of the project's README, in order; returns them."""
    found = recipes((project / "README.md").read_text(encoding="utf-8"))
    for recipe in found:
        apply(project, recipe)
    return found
