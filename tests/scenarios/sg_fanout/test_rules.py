"""sg-fanout's rendered state for a port delete (no root): what remove_port_filter takes away."""

from dataclasses import replace

from labtwin.scenarios.sg_fanout.emulation import rules
from labtwin.scenarios.sg_fanout.spec import generated_layout

LAYOUT = generated_layout(3, 2, "spread", 1, 1)
PORTS = rules.eports(LAYOUT)


def test_port_removal_unhooks_every_jump_then_deletes_the_chains():
    port = PORTS["m-0003"]
    removal = rules.port_removal(port)
    added = [line.replace(" 1 ", " ", 1).replace("-I ", "-D ", 1) for line in rules.port_jumps(port)]
    assert removal[:4] == added
    chains = port.chains()
    assert removal[4:] == [f"-F {c}" for c in chains] + [f"-X {c}" for c in chains]
    # nothing else jumps to the port's chains once its jumps are gone (o -> s is flushed first)
    others = [line for p in PORTS.values() if p is not port for line in rules.port_jumps(p)]
    assert not any(c in line for c in chains for line in others)


def test_ovs_port_matches_cover_every_flow_of_the_port_and_none_of_another():
    port, other = (replace(PORTS[n], ofport=i) for n, i in (("m-0003", 7), ("m-0001", 3)))

    def covered(flow, p):
        fields = set(flow.split(",", 1)[1].split(",actions=")[0].split(","))  # after the cookie, before actions
        return any(set(m.split(",")) <= fields for m in rules.ovs_port_matches(p))

    for firewall in ("ovs", "subtable"):
        assert all(covered(f, port) for f in rules.ovs_port_flows(port, LAYOUT, firewall))
        assert not any(covered(f, port) for f in rules.ovs_port_flows(other, LAYOUT, firewall))
        assert not any(covered("cookie=0x0," + f, port) for f in rules.ovs_infra_flows(uplink=1))
