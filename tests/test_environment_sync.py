"""environment.yml (conda) and pyproject.toml (pip) ask for the same Python packages."""

from pathlib import Path

import yaml
from packaging.requirements import Requirement

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def pyproject_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    return requirement_map(lines)


def environment_requirements() -> dict[str, str]:
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    return requirement_map(line for line in pip if not line.startswith("-"))


def requirement_map(lines) -> dict[str, str]:
    """name -> version specifier (sorted), names normalised the way pip compares them."""
    out = {}
    for line in lines:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-").replace(".", "-")
        assert name not in out, f"{name} listed twice"
        out[name] = ",".join(sorted(str(s) for s in req.specifier)) + (f"; {req.marker}" if req.marker else "")
    return out


def test_same_packages_and_versions():
    pip, conda = pyproject_requirements(), environment_requirements()
    only_pip = {n: v for n, v in pip.items() if n not in conda}
    only_conda = {n: v for n, v in conda.items() if n not in pip}
    differ = {n: (pip[n], conda[n]) for n in pip.keys() & conda.keys() if pip[n] != conda[n]}
    assert (only_pip, only_conda, differ) == ({}, {}, {}), "pyproject.toml and environment.yml disagree"


def test_same_python():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pythons = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    assert pythons == [f"python{requires}"]


def test_environment_installs_labtwin_itself():
    deps = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip


def test_requirement_map_sees_version_differences():
    assert requirement_map(["Foo_Bar>=1.0"]) != requirement_map(["foo-bar>=2.0"])
    assert requirement_map(["Foo_Bar>=1.0"]) == requirement_map(["foo-bar >= 1.0"])
