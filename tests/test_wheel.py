"""The wheel carries what the API needs outside a checkout: the default topologies, the committed example
calibration, py.typed. Built from this tree and installed into a temporary venv (its dependencies are this
environment's, reached through a .pth line), then used from another directory."""

import json
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow

USE = textwrap.dedent(
    """
    import labtwin, json
    from pathlib import Path
    from labtwin import api
    from labtwin.scenarios.sg_fanout.calibrate import MEASURED_PROFILE
    here = Path(labtwin.__file__).parent
    run = api.simulate("reachability")
    print(json.dumps({
        "package": str(here),
        "typed": (here / "py.typed").is_file(),
        "calibration": MEASURED_PROFILE.is_file(),
        "topologies": sorted(p.name for p in api.topologies_dir().glob("*.yaml")),
        "default": str(api.default_topology("dvr")),
        "probes": run.summary["probe_count"],
    }))
    """
)


def test_the_wheel_ships_topologies_and_calibration(tmp_path):
    wheels, venv, source = tmp_path / "wheels", tmp_path / "venv", tmp_path / "source"
    # a copy of the working tree: a build/ left in the checkout could carry modules that no longer exist
    skip = shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "out", ".cache", "node_modules", "__pycache__"
    )
    shutil.copytree(ROOT, source, symlinks=True, ignore=skip)
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)]
    subprocess.run(build, check=True, capture_output=True, text=True)
    (wheel,) = wheels.glob("labtwin-*.whl")
    # without its own pip (ensurepip takes ~7 s): this environment's pip is reached through deps.pth below
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (tmp_path / "venv" / site.split(str(venv) + "/", 1)[1] / "deps.pth").write_text(sysconfig.get_paths()["purelib"])
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    done = subprocess.run([python, "-c", USE], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["package"].startswith(str(venv)), "the installed wheel, not this checkout, was imported"
    assert got["typed"] and got["calibration"]
    assert {"dvr.yaml", "minimal.yaml", "multisegment.yaml", "sg-fanout.yaml"} <= set(got["topologies"])
    assert got["default"].startswith(str(venv)) and got["probes"] > 0
