"""Jinja extensions for this template (listed in cookiecutter.json `_extensions`).

Cookiecutter puts the template directory on sys.path while it renders, so this
module is importable by name there.
"""

from __future__ import annotations

from jinja2 import Environment
from jinja2.ext import Extension


class UnicodeJsonExtension(Extension):
    """Make `tojson` write non-ASCII text as is.

    By default `tojson` escapes it, and a character outside the BMP (an emoji)
    becomes a surrogate pair `\\ud83d\\ude00`: Python reads that as two broken
    characters and TOML rejects it. Written as is, the rendered string literal
    is the same text in both languages. Quotes, backslashes and control
    characters are still escaped.
    """

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
