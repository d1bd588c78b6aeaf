"""Failed reads are errors, never "nothing there": captures (a leak or a path must not be counted from nothing)
and firewall dumps."""

import pytest

from labtwin.emulation.captures import read_pcap, summarise
from labtwin.scenarios.dvr.emulation.observe import sightings
from labtwin.scenarios.multisegment.emulation.evidence import frames


@pytest.mark.parametrize("reader", [read_pcap, summarise, sightings, frames])
def test_missing_or_empty_capture_is_an_error(tmp_path, reader):
    with pytest.raises(RuntimeError, match="missing or empty"):
        reader(tmp_path / "never-written.pcap")
    (tmp_path / "empty.pcap").write_bytes(b"")
    with pytest.raises(RuntimeError, match="missing or empty"):
        reader(tmp_path / "empty.pcap")


@pytest.mark.parametrize("key", ["iptables", "nft", "flows"])
def test_an_empty_firewall_dump_is_a_failed_read(key):
    from labtwin.scenarios.sg_fanout.emulation.kernel import EXPECTED_IN_DUMP, require_content

    require_content("compute-1", {key: f"... {EXPECTED_IN_DUMP[key]} ..."})
    with pytest.raises(RuntimeError, match=f"compute-1: the {key} dump has no"):
        require_content("compute-1", {key: ""})
