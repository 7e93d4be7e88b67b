"""Reject bad input before anything is generated.

Each rule prints one line naming the option, the bad value and what to do, and
exits non-zero; cookiecutter then removes the half-made project directory.

Cookiecutter renders this file with Jinja before running it. The context comes
in through `tojson` inside a raw string: JSON escapes quotes and backslashes
(and Jinja's `tojson` escapes `'` too), so no value can close the string or
inject code, and this file stays plain, lintable Python.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Import names the generated component or its tests rely on: a package with
# one of these names would shadow it. (`tests` would also collide with the
# project's own tests/ directory.)
SHADOWED_IMPORTS = frozenset(
    {
        "tests",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "httpx_sse",
        "pydantic",
        "pydantic_settings",
        "sse_starlette",
        "prometheus_client",
        "prometheus_fastapi_instrumentator",
        "redis",
        "jwt",
        "websockets",
        "anyio",
        "pytest",
        "mypy",
        "ruff",
    }
)
# A name is a Python package AND (with `-` for `_`) a distribution name and an
# environment prefix, so: lowercase ASCII, starting with a letter, not ending
# with `_`.
NAME = re.compile(r"[a-z][a-z0-9_]*(?<!_)")
PORT_RANGE = range(8000, 10000)
# https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?",
    re.ASCII,
)
# The same version also goes into pyproject.toml, so pip must accept it (PEP 440).
PEP440 = re.compile(
    r"v?(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*"
    r"(?:[-_.]?(?:alpha|a|beta|b|preview|pre|c|rc)[-_.]?[0-9]*)?"
    r"(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?"
    r"(?:[-_.]?dev[-_.]?[0-9]*)?"
    r"(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?",
    re.IGNORECASE | re.ASCII,
)
CAPABILITY = re.compile(r"[a-z][a-z0-9_.-]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
# Every character str.splitlines() breaks on.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")


def check_one_line_fields(context: dict[str, Any]) -> Iterator[str]:
    # Every option is one line of text; `_private` entries are not user input.
    for field, value in context.items():
        if field.startswith("_") or not isinstance(value, str):
            continue
        if LINE_BREAKS.intersection(value):
            yield f"{field} {value!r} contains a line break; it must fit on one line"
        elif control := next((char for char in value if unicodedata.category(char) == "Cc" and char != "\t"), None):
            # TOML forbids raw control characters in strings, and no one types them on purpose.
            yield f"{field} {value!r} contains the control character {control!r}; remove it"


def check_component_name(context: dict[str, Any]) -> Iterator[str]:
    name = str(context["component_name"])
    tekton: dict[str, int] = context.get("_tekton_components", {})
    if not NAME.fullmatch(name):
        yield (
            f"component_name {name!r} is not a lowercase Python identifier: use lowercase letters, digits"
            " and underscores, starting with a letter and not ending with '_' (e.g. my_component)"
        )
    elif keyword.iskeyword(name):
        yield f"component_name {name!r} is a Python keyword; choose another name (e.g. my_{name})"
    elif name in sys.stdlib_module_names:
        yield f"component_name {name!r} is a Python standard library module; choose another name (e.g. my_{name})"
    elif name in tekton:
        yield f"component_name {name!r} is an existing Tekton component; choose another name"
    elif name in SHADOWED_IMPORTS:
        yield f"component_name {name!r} would shadow the {name!r} package the component imports; choose another name"


def check_component_port(context: dict[str, Any]) -> Iterator[str]:
    raw = str(context["component_port"])
    tekton: dict[str, int] = context.get("_tekton_components", {})
    if not re.fullmatch(r"[0-9]+", raw, re.ASCII):
        yield f"component_port {raw!r} is not an integer; use a port in 8000-9999 (e.g. 8020)"
        return
    port = int(raw)
    owners = sorted(name for name, reserved in tekton.items() if reserved == port)
    if port not in PORT_RANGE:
        yield f"component_port {port} is outside 8000-9999; Tekton components use ports in that range"
    elif owners:
        yield f"component_port {port} is reserved for Tekton's {', '.join(owners)}; pick a free port in 8000-9999"


def check_version(context: dict[str, Any]) -> Iterator[str]:
    version = str(context["version"])
    if not SEMVER.fullmatch(version):
        yield f"version {version!r} is not semver MAJOR.MINOR.PATCH (e.g. 0.1.0 or 1.0.0-rc.1)"
    elif not PEP440.fullmatch(version):
        yield f"version {version!r} is semver but not a valid Python package version (PEP 440); use e.g. 1.0.0-rc.1"


def check_capabilities(context: dict[str, Any]) -> Iterator[str]:
    # Split the way about.py does: comma-separated, blanks dropped.
    for capability in (part.strip() for part in str(context["capabilities"]).split(",")):
        if capability and not CAPABILITY.fullmatch(capability):
            yield (
                f"capability {capability!r} must match ^[a-z][a-z0-9_.-]*$ "
                "(lowercase, starting with a letter; separate capabilities with commas)"
            )


def check_event_bus(context: dict[str, Any]) -> Iterator[str]:
    choices = option_choices(context, "event_bus")
    value = context["event_bus"]
    if choices is not None and value not in choices:
        yield f"event_bus {value!r} is not one of {', '.join(choices)}"


def check_author_email(context: dict[str, Any]) -> Iterator[str]:
    email = str(context["author_email"])
    if not EMAIL.fullmatch(email):
        yield f"author_email {email!r} is not an email address; use name@host"


def option_choices(context: dict[str, Any], option: str) -> list[str] | None:
    """The choices cookiecutter.json offers for `option`, when they can be known.

    `_cookiecutter` holds the options as declared (lists for choices). A
    replayed context holds only the chosen value: read the template's file.
    cruft sets neither, but builds its context through cookiecutter's own
    choice check, so there is nothing left to check (None).
    """
    declared = context.get("_cookiecutter", {}).get(option)
    if isinstance(declared, list):
        return [str(choice) for choice in declared]
    if "_repo_dir" in context:
        config = json.loads((Path(context["_repo_dir"]) / "cookiecutter.json").read_text(encoding="utf-8"))
        return [str(choice) for choice in config[option]]
    return None


# Every broken rule is reported, not only the first, in prompt order.
CHECKS: tuple[Callable[[dict[str, Any]], Iterator[str]], ...] = (
    check_one_line_fields,
    check_component_name,
    check_component_port,
    check_version,
    check_capabilities,
    check_event_bus,
    check_author_email,
)


def validate(context: dict[str, Any]) -> list[str]:
    """Every broken rule's message, in CHECKS order."""
    return [message for check in CHECKS for message in check(context)]


def main() -> int:
    # ''' cannot occur in tojson's output (it writes ' as \u0027): keep these quotes.
    cookiecutter = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    declared = json.loads(r'''{{ _cookiecutter | default({}) | tojson }}''')  # fmt: skip
    context = {**cookiecutter, "_cookiecutter": declared}
    errors = validate(context)
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
