"""Facts fixed when the component was generated (its name, title, port, ...).

With `client/__init__.py` (the name of its typed client), the only module
of the package that the template fills in; the rest refers to these names.
"""

from typing import Final

COMPONENT_NAME: Final = {{ cookiecutter.component_name | tojson }}
# The text given at generation, kept exactly as written (it may be long or hold quotes).
# fmt: off
COMPONENT_TITLE: Final = {{ cookiecutter.component_title | tojson }}
DESCRIPTION: Final = {{ cookiecutter.description | tojson }}
# fmt: on
VERSION: Final = {{ cookiecutter.version | tojson }}
DEFAULT_PORT: Final = {{ cookiecutter.component_port | int }}
{%- set capabilities = cookiecutter.capabilities.split(",") | map("trim") | reject("equalto", "") | list %}
{%- if capabilities %}
CAPABILITIES: Final[tuple[str, ...]] = (
{%- for capability in capabilities %}
    {{ capability | tojson }},
{%- endfor %}
)
{%- else %}
CAPABILITIES: Final[tuple[str, ...]] = ()
{%- endif %}
DEFAULT_EVENT_BUS: Final = {{ cookiecutter.event_bus | tojson }}
API_VERSION: Final = "v1"

# Known Tekton components and their ports (Tekton's port conventions): the static
# fallback for discovery when Hermes cannot answer.
TEKTON_PORTS: Final[dict[str, int]] = {
{%- for name, port in cookiecutter._tekton_components | dictsort(by="value") %}
    {{ name | tojson }}: {{ port }},
{%- endfor %}
}
