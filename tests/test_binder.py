"""The conda environments (Binder's image and the top-level ``environment.yml``) install everything
``pyproject.toml`` needs at run time, from conda-forge, and pip never replaces what conda installed;
the Binder image carries no academic-only model; the links in and around ``binder/`` lead somewhere."""

import re
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
ENVIRONMENTS = [BINDER / "environment.yml", ROOT / "environment.yml"]
# conda-forge's names for the PyPI distributions whose names differ there.
CONDA_NAMES = {"opencv-python": {"py-opencv", "opencv"}, "opencv-python-headless": {"py-opencv", "opencv"},
               "pyyaml": {"pyyaml"}}
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def conda_specs(environment: dict) -> dict[str, str]:
    """Each conda package of an environment file, by name, with its version spec ('' when none)."""
    specs = {}
    for entry in environment["dependencies"]:
        if isinstance(entry, str):
            name, spec = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(.*)", entry.strip()).groups()
            specs[name.lower()] = spec.strip()
    return specs


def lowest_version(spec: str) -> Version | None:
    """The lowest version a conda spec admits (``=2.4`` and ``2.4.*`` admit 2.4.0), None without a lower bound."""
    found = re.match(r"(?:>=|==|=)?\s*(\d+(?:\.\d+)*)", spec)
    return Version(found.group(1)) if found and not spec.startswith(("<", "!")) else None


def problems(environment_text: str) -> list[str]:
    """What is missing or too old in an environment file for face3d_nb's run-time dependencies."""
    specs = conda_specs(yaml.safe_load(environment_text))
    python = lowest_version(specs.get("python", ""))
    assert python is not None, "the environment must pin a lowest Python version"
    found = []
    for requirement in map(Requirement, PYPROJECT["project"]["dependencies"]):
        if requirement.marker and not requirement.marker.evaluate({"python_version": f"{python.major}.{python.minor}"}):
            continue
        pypi = canonicalize_name(requirement.name)
        names = CONDA_NAMES.get(pypi, {pypi}) & specs.keys()
        if not names:
            found.append(f"{requirement.name} is missing (conda-forge: {' or '.join(sorted(CONDA_NAMES.get(pypi, {pypi})))})")
            continue
        for name in names:
            lowest = lowest_version(specs[name])
            if lowest is not None and not requirement.specifier.contains(lowest, prereleases=True):
                found.append(f"{name} {specs[name]} admits {lowest}, which pyproject excludes ({requirement})")
    return found


def pip_entries(environment_text: str) -> list[str]:
    return [item for entry in yaml.safe_load(environment_text)["dependencies"] if isinstance(entry, dict)
            for item in entry.get("pip", [])]


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_conda_installs_every_runtime_dependency(path):
    assert problems(path.read_text()) == []


def test_the_check_names_what_is_missing_or_too_old():
    text = "dependencies:\n  - python=3.11\n  - numpy\n  - pythreejs=2.4\n"
    found = "\n".join(problems(text))
    assert "threadpoolctl is missing" in found
    assert "opencv-python is missing (conda-forge: opencv or py-opencv)" in found
    assert "pythreejs =2.4 admits 2.4, which pyproject excludes" in found
    # tomli is only needed below Python 3.11.
    assert "tomli" not in found
    assert "tomli" in "\n".join(problems(text.replace("=3.11", ">=3.10")))


@pytest.mark.parametrize("path", ENVIRONMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_pip_step_can_replace_condas_packages(path):
    # A pip step in an environment file is a requirements file, which cannot say --no-deps: installing
    # the project there would pull opencv-python over conda's OpenCV.
    assert not [item for item in pip_entries(path.read_text()) if re.search(r"(^|\s)\.(\[|$)|face3d", item)]


def postbuild_commands() -> list[str]:
    return [line.strip() for line in (BINDER / "postBuild").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_postbuild_installs_the_project_without_its_dependencies():
    installs = [c for c in postbuild_commands() if re.search(r"\bpip install\b", c)]
    assert installs, "postBuild must install face3d_nb"
    assert all("--no-deps" in c for c in installs), installs


def test_the_image_carries_no_academic_only_model():
    fetches = [c for c in postbuild_commands() if "face3d-nb models" in c or "face3d_nb models" in c]
    assert fetches, "postBuild should bake the MIT-licensed detector and regressor into the image"
    assert all(" fetch" in c and "--no-bfm" in c for c in fetches), fetches


def readme_sections() -> set[str]:
    return set(re.findall(r"^##+ (.+?)\s*$", (ROOT / "README.md").read_text(), flags=re.MULTILINE))


def test_references_to_the_readme_name_sections_that_exist():
    sources = [*BINDER.iterdir(), ROOT / "environment.yml"]
    cited = {(p.name, name) for p in sources for name in re.findall(r'README[^"\n]*"([^"]+)"', p.read_text())}
    assert cited, "binder/ should say where the README explains it"
    assert [c for c in cited if c[1] not in readme_sections()] == []


def test_the_badges_point_to_the_projects_repository():
    repository = PYPROJECT["project"]["urls"]["Repository"]
    owner_repo = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)/?", repository).group(1)
    badges = re.findall(r"mybinder\.org/v2/gh/([^/]+/[^/]+)/", (ROOT / "README.md").read_text())
    assert len(badges) == 2
    assert set(badges) == {owner_repo}
