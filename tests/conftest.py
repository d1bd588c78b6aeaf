"""Shared fixtures: the repository's topologies, and live emulation (root + OVS) one at a time."""

import fcntl
from pathlib import Path

import pytest

from labtwin.api import emulation_possible
from labtwin.emulation.snapshot import machine_state

ROOT = Path(__file__).resolve().parents[1]

#: Live tests compare machine-wide state before and after, so two of them (from two pytest processes,
#: e.g. two developers' runs on one machine) must not overlap. Ad-hoc emulation while tests run:
#: `flock /run/labtwin/live-tests.lock CMD`.
LIVE_LOCK = Path("/run/labtwin/live-tests.lock")


@pytest.fixture
def topologies() -> Path:
    return ROOT / "topologies"


@pytest.fixture
def minimal_text(topologies) -> str:
    return (topologies / "minimal.yaml").read_text()


def live_reason():
    """Why live emulation cannot run here, or None when it can: ``labtwin doctor``'s answer."""
    ok, reasons = emulation_possible()
    return None if ok else "; ".join(reasons)


@pytest.fixture(autouse=True)
def _one_live_emulation_at_a_time(request):
    """Every test marked ``emulation`` holds the machine-wide live lock while it runs."""
    if request.node.get_closest_marker("emulation") is None:
        yield
        return
    LIVE_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LIVE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture
def live(request):
    """Skip (with `labtwin doctor`'s reason) where root or OVS is truly absent. Tests using it are marked
    ``emulation``, so they hold the live lock (checked here: an unmarked live test would run unlocked)."""
    assert request.node.get_closest_marker("emulation"), "a test using `live` must be marked emulation"
    reason = live_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def ledger_dir(tmp_path, monkeypatch):
    path = tmp_path / "ledgers"
    monkeypatch.setenv("LABTWIN_LEDGER_DIR", str(path))
    return path


@pytest.fixture
def snapshot():
    return machine_state


@pytest.fixture
def ovn():
    """OVN's version, unpacked by `make setup`; skip (saying so) where it is not."""
    from labtwin.emulation.ovn_install import OvnMissing, ovn_version

    try:
        return ovn_version()
    except OvnMissing as exc:
        pytest.skip(str(exc))


#: The oracle's every-topology test, whose files are asked about in the background (below).
ORACLE_TEST = "test_neutron_answers_every_topology_as_labtwin_does"


def pytest_collection_modifyitems(session, config, items):
    """The oracle's tests go last, so that its answers, asked for in the background from the start
    (:func:`pytest_collection_finish`), are ready when they run."""
    oracle = [item for item in items if item.path.parent.name == "oracle"]
    if oracle and len(oracle) < len(items):
        items[:] = [item for item in items if item.path.parent.name != "oracle"] + oracle


def pytest_collection_finish(session):
    """Neutron's answers for every topology the oracle test asks about take ~3 CPU-minutes: a background process
    at a lower priority asks for them while the other tests run, mostly waiting on emulations
    (:func:`labtwin.oracle.run.prefetch`; a failed prefetch costs nothing, the test then asks itself)."""
    paths = [item.callspec.params["path"] for item in session.items if item.originalname == ORACLE_TEST]
    if len(paths) > 1 and not session.config.option.collectonly:
        from labtwin.oracle.run import prefetch

        prefetch(paths)
