"""Whatever ``labtwin validate`` accepts, every scenario runs or refuses (issue 10).

Each scenario's model runs over every topology in ``topologies/`` and over a
fuzzed corpus of valid clouds, under a few knob settings. A call either returns
a Run or raises :class:`~labtwin.scenarios.TopologyUnfit`, whose one-line message
names the topology file and what the cloud lacks; any other exception is a bug
(at the command line it would be a traceback and exit 1). The three inputs that
used to crash are files under ``tests/inputs/``; the CLI refuses them with exit 2
and one line on stderr, for ``simulate``, ``emulate`` and ``twin`` alike, and the
emulation refuses before it creates anything.
"""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labtwin import api
from labtwin.cli import main
from labtwin.description import CloudError, load_cloud
from labtwin.records import Run
from labtwin.scenarios import SCENARIOS, TopologyUnfit

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = sorted((ROOT / "topologies").glob("*.yaml"))
INPUTS = ROOT / "tests" / "inputs"

#: Knob settings per scenario: each design branch a topology could trip (router designs, IPAM rules,
#: agents, operator and migration, firewall strategies, joins and leaves). Sizes are small: the shape of
#: the cloud is under test, not the load.
SETTINGS = {
    "reachability": [{}, {"probes": "udp:53,tcp:80"}],
    "dvr": [
        {"router": "legacy", "flows": 20},
        {"router": "dvr", "flows": 20},
        {
            "router": "dvr",
            "flows": 20,
            "ipv6_fast_exit": True,
            "distributed_snat": True,
            "distributed_dhcp": True,
            "vip_arp": "learned",
        },
        {"router": "ovn", "flows": 20, "ovn_distributed_fip": True},
    ],
    "multisegment": [
        {"segments_per_host": "one", "demand": 30},
        {"segments_per_host": "many", "migration": "rolling-restart", "demand": 30},
        {
            "segments_per_host": "one",
            "operator": "always",
            "add_segment_at": 5000,
            "agent": "ovs",
            "bridge_naming": "segment",
            "demand": 30,
            "max_prefix": 29,
        },
    ],
    "sg-fanout": [
        {"firewall": "iptables"},
        {"firewall": "ovs", "placement": "packed", "leaves": 1},
        {"firewall": "subtable", "joins": 3, "leaves": 10},
        {"firewall": "ipset", "joins": 0},
    ],
}
CASES = [(name, knobs) for name, settings_ in SETTINGS.items() for knobs in settings_]


def run_or_refuse(scenario: str, path: Path, knobs: dict):
    """The model's Run, or ``None`` after checking the refusal says which file lacks what, on one line."""
    try:
        run = api.simulate(scenario, path, **knobs)
    except TopologyUnfit as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert message.startswith(f"{path}: scenario {scenario} cannot run on cloud "), message
        assert ": it needs " in message and len(message.split(": it needs ", 1)[1]) > 20, message
        return None
    assert isinstance(run, Run) and run.scenario == scenario and run.backend == "model"
    return run


def case_id(case) -> str:
    name, knobs = case
    return name + (
        "[" + ",".join(f"{k}={v}" for k, v in knobs.items() if k not in ("flows", "demand")) + "]" if knobs else ""
    )


# --- the repository's topologies ------------------------------------------------------


@pytest.mark.parametrize("topology", TOPOLOGIES, ids=lambda p: p.name)
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_every_topology_runs_or_refuses_every_scenario(topology, case):
    scenario, knobs = case
    run = run_or_refuse(scenario, topology, knobs)
    if topology.name == SCENARIOS[scenario].default_topology:
        assert run is not None, f"{scenario} refuses its own default topology {topology.name}"


@pytest.mark.parametrize(
    "scenario, topology",
    [
        ("dvr", "multisegment.yaml"),
        ("dvr", "sg-fanout.yaml"),
        ("multisegment", "minimal.yaml"),
        ("multisegment", "dvr.yaml"),
    ],
)
def test_known_unfit_topologies_are_refused(scenario, topology):
    """Pairs that cannot run (no router with a gateway; no routed network): refused, not half-run."""
    assert run_or_refuse(scenario, ROOT / "topologies" / topology, SETTINGS[scenario][0]) is None


# --- a fuzzed corpus of valid clouds ----------------------------------------------------


@st.composite
def cloud_data(draw) -> dict:
    """A topology as plain data, valid by construction in most draws (the loader has the last word).

    Biased towards what the scenarios look for (an external network with a
    router, a network node, a routed network, a self-referencing group), and
    with the corners they must survive: IPv6 and tiny subnets, no gateway,
    unbound and DHCP ports, VIPs in address pairs, floating IPs, vxlan segments.
    """
    physnets = [f"phys{i}" for i in range(draw(st.sampled_from([0, 1, 1, 2, 2])))]
    networks, segments, subnets = [], [], []
    for n in range(draw(st.sampled_from([1, 2, 2, 3]))):
        net = f"net{n}"
        external = draw(st.integers(0, 2)) > 0 if n == 0 else draw(st.booleans())
        networks.append(
            {"name": net, "router:external": external, "port_security_enabled": draw(st.integers(0, 5)) > 0}
        )
        own = [draw(_segment(net, n, s, physnets, segments)) for s in range(draw(st.integers(0, 2)))]
        segments.extend(own)
        routed = bool(own) and draw(st.integers(0, 2)) > 0
        for s in range(draw(st.integers(0, 2))):
            subnets.append(draw(_subnet(net, n, s, [g["name"] for g in own] if routed else [])))
    hosts = [draw(_host(h, physnets)) for h in range(draw(st.sampled_from([0, 1, 2, 3, 3, 4])))]
    external = [n["name"] for n in networks if n["router:external"]]
    routers = [
        draw(_router(r, external, [s["name"] for s in subnets])) for r in range(draw(st.sampled_from([0, 1, 1, 1, 2])))
    ]
    groups = draw(_groups())
    ports, floatingips = [], []
    vip = draw(st.booleans())
    for p in range(draw(st.integers(0, 6))):
        port = draw(_port(p, networks, hosts, subnets, [g["name"] for g in groups], vip))
        ports.append(port)
        if external and draw(st.integers(0, 3)) == 0:
            floatingips.append({"floating_network_id": draw(st.sampled_from(external)), "port_id": port["name"]})
    return {
        "name": "fuzzed",
        "physnets": [{"name": p} for p in physnets],
        "hosts": hosts,
        "networks": networks,
        "segments": segments,
        "subnets": subnets,
        "routers": routers,
        "security_groups": groups,
        "ports": ports,
        "floatingips": floatingips,
    }


@st.composite
def _segment(draw, net: str, n: int, s: int, physnets: list, earlier: list) -> dict:
    kind = draw(st.sampled_from(["vxlan"] + (["vlan", "flat"] if physnets else [])))
    seg = {"name": f"{net}-s{s}", "network_id": net, "network_type": kind}
    if kind == "vxlan":
        return {**seg, "segmentation_id": 1000 + 10 * n + s}
    physnet = draw(st.sampled_from(physnets))
    flat_taken = any(g["network_type"] == "flat" and g["physical_network"] == physnet for g in earlier)
    if kind == "flat" and not flat_taken:
        return {**seg, "physical_network": physnet}
    return {**seg, "network_type": "vlan", "physical_network": physnet, "segmentation_id": 100 + 10 * n + s}


@st.composite
def _subnet(draw, net: str, n: int, s: int, segments: list) -> dict:
    v6 = draw(st.integers(0, 3)) == 0
    sub = {
        "name": f"{net}-sub{s}",
        "network_id": net,
        "enable_dhcp": draw(st.booleans()),
        "cidr": f"fd00:{n}:{s}::/64" if v6 else f"10.{n}.{s}.0/{draw(st.sampled_from([24, 28]))}",
    }
    if v6:
        sub["ip_version"] = 6
    if segments:
        sub["segment_id"] = draw(st.sampled_from(segments))
    if draw(st.integers(0, 5)) == 0:
        sub["gateway_ip"] = None
    return sub


@st.composite
def _host(draw, h: int, physnets: list) -> dict:
    roles = ["compute", "network", "network"] if h == 0 else ["compute", "compute", "network"]
    mapped = draw(st.lists(st.sampled_from(physnets), unique=True)) if physnets else []
    return {
        "name": f"host{h}",
        "role": draw(st.sampled_from(roles)),
        "rack": draw(st.sampled_from(["rack1", "rack2"])),
        "bridge_mappings": {p: f"br-{p}" for p in mapped},
    }


@st.composite
def _router(draw, r: int, external: list, subnets: list) -> dict:
    router = {
        "name": f"router{r}",
        "distributed": draw(st.booleans()),
        "interfaces": draw(st.lists(st.sampled_from(subnets), unique=True, min_size=1, max_size=3)) if subnets else [],
    }
    if external and draw(st.integers(0, 5)) > 0:
        router["external_gateway_info"] = {"network_id": draw(st.sampled_from(external))}
    return router


@st.composite
def _groups(draw) -> list:
    groups = []
    if draw(st.integers(0, 4)) > 0:
        rules = [{"direction": "egress"}]
        if draw(st.integers(0, 4)) > 0:
            rules.append({"direction": "ingress", "remote_group_id": "default"})
        if draw(st.booleans()):
            rules.append(
                {"direction": "ingress", "ethertype": "IPv6", "protocol": "icmpv6", "remote_group_id": "default"}
            )
        groups.append({"name": "default", "rules": rules})
    if draw(st.booleans()):
        rule = {"direction": "ingress", "protocol": draw(st.sampled_from(["tcp", "udp", "icmp", "any"]))}
        if rule["protocol"] in ("tcp", "udp"):
            rule["port_range_min"] = rule["port_range_max"] = draw(st.sampled_from([0, 22, 80]))
        if draw(st.booleans()):
            rule["remote_group_id"] = draw(st.sampled_from(["web", "default"] if groups else ["web"]))
        else:
            rule["remote_ip_prefix"] = "0.0.0.0/0"
        groups.append({"name": "web", "rules": [rule]})
    return groups


@st.composite
def _port(draw, p: int, networks: list, hosts: list, subnets: list, groups: list, vip: bool) -> dict:
    net = draw(st.sampled_from(networks))["name"]
    port = {"name": f"vm{p}", "network_id": net}
    if hosts and draw(st.integers(0, 4)) > 0:
        port["binding:host_id"] = draw(st.sampled_from(hosts))["name"]
    own = [s for s in subnets if s["network_id"] == net]
    if own and draw(st.booleans()):
        chosen = draw(st.lists(st.sampled_from(own), min_size=1, max_size=2, unique_by=lambda s: s["name"]))
        port["fixed_ips"] = [{"subnet_id": s["name"]} for s in chosen]
        if draw(st.booleans()):  # an explicit address: .5+p (or ::5+p), clear of the gateway and of each other
            base = chosen[0]["cidr"].split("/")[0]
            port["fixed_ips"][0]["ip_address"] = base + f"{p + 5:x}" if ":" in base else base[:-1] + str(p + 5)
    if groups and draw(st.booleans()):
        port["security_groups"] = draw(st.lists(st.sampled_from(groups), unique=True))
    if draw(st.integers(0, 5)) == 0:
        port["device_owner"] = "network:dhcp"
    if draw(st.integers(0, 5)) == 0:
        port["port_security_enabled"] = False
    if vip and draw(st.booleans()):  # a VRRP VIP several ports may list
        port["allowed_address_pairs"] = [{"ip_address": f"10.{net[3:]}.0.200"}]
    return port


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(data=cloud_data(), picks=st.fixed_dictionaries({name: st.sampled_from(s) for name, s in SETTINGS.items()}))
def test_fuzzed_valid_clouds_run_or_refuse_every_scenario(tmp_path, data, picks):
    path = tmp_path / "fuzzed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        load_cloud(path)
    except CloudError:  # e.g. a host that reaches no segment of a routed network: validate refuses it too
        assume(False)
    for scenario, knobs in picks.items():
        run_or_refuse(scenario, path, knobs)


# --- the inputs that used to crash, at the command line ----------------------------------

KNOWN = [
    ("dvr-no-network-node.yaml", "dvr", {"router": "dvr"}, "a host with role: network for the snat- namespace"),
    ("dvr-no-network-node.yaml", "dvr", {"router": "ovn"}, "a host with role: network for the gateway chassis"),
    ("dvr-no-network-node.yaml", "dvr", {"router": "legacy"}, "a host with role: network for the qrouter- namespace"),
    ("multisegment-not-routed.yaml", "multisegment", {}, "a routed network, one whose subnets are bound to segments"),
]


@pytest.fixture
def no_emulation(monkeypatch):
    """Fail loudly if an emulation starts creating anything (a realisation, a plan, a ledger)."""
    from labtwin.emulation import ledger, realise

    def created(*args, **kwargs):
        raise AssertionError("the emulation started creating objects before refusing")

    monkeypatch.setattr(realise.Realisation, "__enter__", created)
    monkeypatch.setattr(ledger.Ledger, "__init__", created)


@pytest.mark.parametrize("command", ["simulate", "emulate", "twin"])
@pytest.mark.parametrize("name, scenario, knobs, what", KNOWN, ids=[f"{k[0]}-{k[2]}" for k in KNOWN])
def test_cli_refuses_known_unfit_inputs_with_one_line(no_emulation, command, name, scenario, knobs, what):
    path = INPUTS / name
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 0, "the input must be valid"
    sets = [arg for k, v in knobs.items() for arg in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(main, [command, scenario, "--topology", str(path), *sets])
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"labtwin: {path}: scenario {scenario} cannot run on cloud "), lines[0]
    assert what in lines[0], lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("command", ["emulate", "twin"])
def test_bad_input_is_named_before_what_the_machine_lacks(no_emulation, monkeypatch, command):
    """On a machine that cannot emulate, a bad knob or an unfit topology is still the error (exit 2): the
    user fixes the input first, on any machine, instead of installing things to learn the input was wrong."""
    from labtwin import api

    monkeypatch.setattr(api, "emulation_possible", lambda: (False, ["Open vSwitch running: not running"]))
    unfit = INPUTS / "dvr-no-network-node.yaml"
    for args in (["dvr", "--topology", str(unfit)], ["sg-fanout", "--set", "members=0"]):
        result = CliRunner().invoke(main, [command, *args])
        assert result.exit_code == 2, result.output + result.stderr
        assert "cannot emulate on this machine" not in result.stderr, result.stderr
    result = CliRunner().invoke(main, [command, "dvr"])  # good input: now the machine is the problem
    assert result.exit_code == 1 and "cannot emulate on this machine" in result.stderr, result.stderr


# --- what only the emulation cannot build: refused while planning, before anything exists ----------------


class Planned(Exception):
    """The emulation got as far as realising its plan: it accepted the cloud."""


@pytest.fixture
def plan_only(monkeypatch):
    """Emulations plan (pure data) and stop where they would start creating things; the machine check is skipped."""
    from labtwin.emulation import realise

    def stop(*args, **kwargs):
        raise Planned()

    monkeypatch.setattr(realise.Realisation, "__init__", stop)
    monkeypatch.setattr(api, "refuse_unless_emulation_possible", lambda: None)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(data=cloud_data(), picks=st.fixed_dictionaries({name: st.sampled_from(s) for name, s in SETTINGS.items()}))
def test_fuzzed_valid_clouds_are_planned_or_refused_by_every_emulation(plan_only, tmp_path, data, picks):
    path = tmp_path / "fuzzed.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        load_cloud(path)
    except CloudError:
        assume(False)
    for scenario, knobs in picks.items():
        try:
            api.emulate(scenario, path, out=tmp_path / "out", **knobs)
        except Planned:
            continue
        except TopologyUnfit as exc:
            assert "\n" not in str(exc) and str(exc).startswith(f"{path}: "), str(exc)


EMULATION_ONLY = [
    (
        "dvr.yaml",
        "dvr",
        {"router": "ovn"},
        lambda text: text.replace(
            "  - name: ext-flat\n    network_id: ext-net\n    network_type: flat\n    physical_network: external\n", ""
        ),
        "control=ovn: the external network of router1 needs a flat or vlan segment",
    ),
    (
        "minimal.yaml",
        "reachability",
        {},
        lambda text: text.replace(
            "network_type: vlan\n    physical_network: physnet1\n    segmentation_id: 101",
            "network_type: vxlan\n    segmentation_id: 101",
        ),
        "vxlan segments are not emulated",
    ),
]


@pytest.mark.parametrize("name, scenario, knobs, edit, what", EMULATION_ONLY, ids=["ovn", "vxlan"])
def test_emulation_refuses_what_only_it_cannot_build(
    no_emulation, monkeypatch, tmp_path, name, scenario, knobs, edit, what
):
    monkeypatch.setattr(api, "refuse_unless_emulation_possible", lambda: None)
    path = tmp_path / name
    path.write_text(edit((ROOT / "topologies" / name).read_text()))
    assert CliRunner().invoke(main, ["validate", str(path)]).exit_code == 0
    sets = [arg for k, v in knobs.items() for arg in ("--set", f"{k}={v}")]
    result = CliRunner().invoke(main, ["emulate", scenario, "--topology", str(path), *sets])
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"labtwin: {path}: ") and what in lines[0], result.stderr


def test_a_floating_ip_no_router_can_nat_is_refused_as_neutron_does():
    """Neutron 29 answers 404 ExternalGatewayForFloatingIPNotFound for a floating IP whose port's subnet no
    router joins to the external network (seen by ``labtwin validate --neutron``): the loader refuses it too,
    located at the floating IP."""
    result = CliRunner().invoke(main, ["validate", str(INPUTS / "fip-without-router.yaml")])
    assert result.exit_code == 2
    assert "floatingips[0].port_id" in result.stderr and "ExternalGatewayForFloatingIPNotFound" in result.stderr


def test_a_router_interface_on_a_subnet_without_gateway_is_refused_as_neutron_does():
    """Neutron 29 refuses to add a router interface by subnet when the subnet has no gateway_ip (400
    BadRequest); the loader refuses it too, at the interface (it was once only the dvr emulation's refusal)."""
    result = CliRunner().invoke(main, ["validate", str(INPUTS / "interface-without-gateway.yaml")])
    assert result.exit_code == 2
    assert "routers[0].interfaces[0]" in result.stderr and "must have a gateway IP" in result.stderr
