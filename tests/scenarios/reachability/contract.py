"""reachability's cases for the scenario contract (tests/test_scenario_contract.py) and what each must show."""

CASES = {
    "three-flows": {"probes": "icmp,tcp:22,udp:53"},
}


def check(case, report, model, emulation, out):
    probes = emulation.probes
    assert len(probes) == len(model.probes) == 36  # 4 VM ports, 12 ordered pairs, 3 flows
    assert probes[probes.verdict == "allowed"].latency_s.max() < 0.5
    assert list((out / "emulation" / "pcap").glob("*.pcap"))
    captures = emulation.events[emulation.events.kind == "capture"]
    assert any(row["seen"] for row in captures.detail)
