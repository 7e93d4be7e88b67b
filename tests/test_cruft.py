"""Generated projects stay updatable with cruft (DESIGN.md section 9).

cruft renders the template through cookiecutter's lower-level API (no
`_repo_dir`, no `_cookiecutter` in the context), runs both hooks again on
every update, and applies the difference between two bakes as a git patch.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import cruft
import pytest

from tooling import ROOT

from .baking import PRUNE_WHEN

pytestmark = pytest.mark.slow

TEMPLATE_PROJECT = "{{cookiecutter.component_name}}"
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", ".*_cache")


@pytest.fixture(autouse=True)
def git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits here must not depend on (or touch) the user's git configuration."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Template Tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@example.com")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def template_repo(tmp_path: Path) -> Path:
    """This template's working tree as a git repository of its own (cruft clones templates)."""
    repo = tmp_path / "template"
    shutil.copytree(ROOT, repo, ignore=COPY_IGNORE)
    git(repo, "init", "-q")
    commit_all(repo, "template")
    return repo


def create_project(template_repo: Path, output_dir: Path) -> Path:
    project = Path(cruft.create(str(template_repo), output_dir=output_dir, no_input=True))
    git(project, "init", "-q")
    commit_all(project, "generated")
    return project


def test_cruft_update_applies_a_template_change(template_repo: Path, tmp_path: Path) -> None:
    project = create_project(template_repo, tmp_path / "out")
    with (template_repo / TEMPLATE_PROJECT / ".gitignore").open("a") as gitignore:
        gitignore.write("# added by a template update\n")
    commit_all(template_repo, "change")

    assert cruft.check(project) is False
    assert cruft.update(project, skip_apply_ask=True) is True
    assert "# added by a template update" in (project / ".gitignore").read_text()
    assert cruft.check(project) is True


def test_cruft_update_does_not_bring_back_pruned_files(template_repo: Path, tmp_path: Path) -> None:
    project = create_project(template_repo, tmp_path / "out")  # event_bus=memory: the Redis files are pruned
    pruned = [path.format(package=TEMPLATE_PROJECT) for path in PRUNE_WHEN[("event_bus", "memory")]]
    assert pruned, "nothing is pruned for event_bus=memory"
    for relative in pruned:
        source = template_repo / TEMPLATE_PROJECT / relative
        with (source / "changed.txt" if source.is_dir() else source).open("a") as changed:
            changed.write("# changed by a template update\n")
    commit_all(template_repo, "change the pruned files")

    assert cruft.update(project, skip_apply_ask=True) is True
    package = project.name
    assert [
        path for path in PRUNE_WHEN[("event_bus", "memory")] if (project / path.format(package=package)).exists()
    ] == []


# main just before the layout change that separated the user's files from the framework's.
BEFORE_LAYOUT = "b23c045699e53743ca750916f28a11cb1d6cd117"


def test_cruft_update_across_the_layout_change_keeps_local_changes(tmp_path: Path) -> None:
    history = subprocess.run(["git", "cat-file", "-e", f"{BEFORE_LAYOUT}^{{commit}}"], cwd=ROOT, capture_output=True)
    assert history.returncode == 0, f"this checkout lacks commit {BEFORE_LAYOUT}: test from a full clone"
    repo = tmp_path / "template"
    git(tmp_path, "clone", "-q", "--no-checkout", str(ROOT), str(repo))
    git(repo, "checkout", "-q", BEFORE_LAYOUT)
    project = create_project(repo, tmp_path / "out")
    service = project / project.name / "service.py"
    service.write_text(service.read_text().replace('"echo": data,', '"echo": data,\n            "local": "change",'))
    with (project / "README.md").open("a") as readme:
        readme.write("\nLocal notes.\n")
    commit_all(project, "local changes")
    # The template as it is now, as the next commit of that history.
    git(repo, "rm", "-rq", ".")
    shutil.copytree(ROOT, repo, ignore=COPY_IGNORE, dirs_exist_ok=True, symlinks=True)
    commit_all(repo, "the layout change")

    assert cruft.update(project, skip_apply_ask=True) is True
    assert '"local": "change"' in service.read_text()
    assert (project / "README.md").read_text().endswith("Local notes.\n")
    assert (project / "tests" / "support" / "hermes.py").is_file()
    assert not (project / project.name / "testing").exists()
    leftovers = [path.name for path in project.rglob("*") if path.suffix in {".rej", ".orig"}]
    assert leftovers == []
