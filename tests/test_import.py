"""labtwin import: Neutron API dumps in, a topology and its report out; bad dumps refused, located, nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from labtwin.cli import main
from labtwin.description import load_cloud
from labtwin.importer import REPORT_NAME, DumpError, import_cloud, write
from labtwin.importer.synthetic import write_dump

API_REF = Path(__file__).parent / "inputs" / "import" / "api-ref"
OTHER_ID = "00000000-dead-4bee-8000-000000000000"


@pytest.fixture(scope="module")
def imported():
    return import_cloud(API_REF)


def test_the_api_reference_shaped_dump_becomes_a_cloud_labtwin_loads(imported, tmp_path):
    topology, report = write(imported, tmp_path / "cloud.yaml")
    cloud = load_cloud(topology)
    assert report == tmp_path / REPORT_NAME and report.read_text().startswith("# Import report")
    assert [(h.name, h.role, h.rack) for h in cloud.hosts] == [
        ("network-1", "network", "rack1"),  # an L3 agent in dvr_snat mode and the DHCP agent
        ("compute-1", "compute", "rack2"),  # the hosts that map physnet-r1
        ("compute-2", "compute", "rack2"),
        ("compute-3", "compute", "rack3"),
    ]
    assert dict(cloud.host["compute-3"].bridge_mappings) == {"public": "br-ex", "physnet-r2": "br-provider"}


def test_ids_are_kept_and_names_labtwin_cannot_use_are_mapped_with_the_original_kept(imported):
    cloud = imported.cloud
    routed = cloud.network["multi-segment-n"]
    assert str(routed.id) == "6f4a1f9e-9ad3-4e0c-8a3c-9b0a0c1d2e3f"
    assert "'multi-segment network'" in routed.description
    web = cloud.port["web-server-1"]
    assert str(web.id) == "65c0ee9f-d634-4522-8954-51021b570b0d" and "'web server #1'" in web.description
    assert web.mac_address == "fa:16:3e:9f:a0:01"  # Neutron answers lower case; the dump had upper
    assert "port-7a9c5e3f" in cloud.port  # unnamed: kind and id
    assert "'compute-1.example.org'" in cloud.host["compute-1"].description


def test_segments_come_from_the_segments_collection_or_the_provider_fields(imported):
    segments = {
        s.name: (s.network_id, s.network_type, s.physical_network, s.segmentation_id) for s in imported.cloud.segments
    }
    assert segments == {
        "rack-1": ("multi-segment-n", "vlan", "physnet-r1", 2016),
        "seg-8c2e9d10": ("multi-segment-n", "vlan", "physnet-r2", 2017),
        "public": ("public", "flat", "public", None),
        "private": ("private", "vxlan", None, 1001),
    }
    assert imported.cloud.subnet["rack2-v4"].segment_id == "seg-8c2e9d10"


def test_routers_take_interfaces_from_ports_and_neutrons_own_ports_are_derived_not_imported(imported):
    cloud = imported.cloud
    router = cloud.router["router1"]
    assert router.interfaces == ("private-subnet",) and router.external_gateway_info.network_id == "public"
    assert not router.distributed and not router.ha
    owners = {p.device_owner for p in cloud.ports}
    assert owners == {"compute:nova"}
    dhcp = [p for p in cloud.network_ports if p.device_owner == "network:dhcp"]
    assert [str(f.ip_address) for f in dhcp[0].fixed_ips if f.ip_address and f.ip_address.version == 4] == ["10.0.0.2"]
    assert dict(imported.report.derived) == {"DHCP port": 1, "router gateway": 1, "router interface": 1}


def test_security_groups_their_rules_and_ports_without_port_security(imported):
    cloud = imported.cloud
    web = cloud.security_group["web"]
    https = [r for r in web.rules if r.protocol == "tcp" and r.port_range_min == 443]
    assert len(https) == 1 and str(https[0].remote_ip_prefix) == "0.0.0.0/0"
    assert any(r.remote_group_id == "default" and r.protocol == "icmp" for r in web.rules)
    appliance = cloud.port["appliance"]
    assert appliance.port_security_enabled is False and not appliance.security_groups


def test_what_cannot_be_expressed_is_listed_per_object_never_dropped_silently(imported):
    dropped = "\n".join(f"{obj} ({where}): {what}" for obj, where, what in imported.report.dropped)
    for expected in (
        "port port-7a9c5e3f (ports.json: $.ports[4]): QoS policy (qos_policy_id)",
        "port trunk-parent (ports.json: $.ports[5]): trunk (trunk_details)",
        "port lb-vip (ports.json: $.ports[9]): device_owner 'Octavia'",
        "router router1 (routers.json: $.routers[0]): extra routes (routes)",
        "(security-group-rules.json: $.security_group_rules[3]): address group (remote_address_group_id)",
        "floatingip 172.24.4.227 (floatingips.json: $.floatingips[1]): not associated with a port",
        "agent network-1 (agents.json: $.agents[6]): BGP dynamic routing agent",
    ):
        assert expected in dropped
    assert "trunk-parent" in imported.cloud.port and "lb-vip" not in imported.cloud.port
    text = imported.report_text
    assert (
        "## Not expressible in labtwin" in text and "QoS policy" in text and "'web server #1' -> web-server-1" in text
    )


def copy_of_dump(tmp_path: Path) -> Path:
    dump = tmp_path / "dump"
    shutil.copytree(API_REF, dump)
    return dump


@pytest.mark.parametrize(
    "file, damage, message",
    [
        ("ports.json", lambda text: text[: len(text) // 2], r"ports\.json:\d+:\d+: not JSON .*cut short"),
        ("ports.json", lambda text: text.replace('"network_id": "f27aa545', '"network": "f27aa545', 1),
         r"ports\.json: \$\.ports\[1\]: no network_id"),
        ("subnets.json", lambda text: text.replace("288bf4a1-51ba-43b6-9d0a-520e9005db17", OTHER_ID),
         r"ports\.json: \$\.ports\[1\]\.fixed_ips\[0\]\.subnet_id: subnet 288bf4a1-.* is not in the dump"),
        ("networks.json", lambda text: json.dumps(json.loads(text)["networks"]),
         r"networks\.json: \$: a JSON list, but not a table labtwin reads"),
        ("routers.json", lambda text: json.dumps({"routerz": []}),
         r"routers\.json: \$\.routerz: not a Neutron collection"),
    ],
)  # fmt: skip
def test_a_bad_dump_is_a_located_error_exit_2_and_nothing_is_written(tmp_path, file, damage, message):
    dump = copy_of_dump(tmp_path)
    path = dump / file
    path.write_text(damage(path.read_text()))
    with pytest.raises(DumpError, match=message):
        import_cloud(dump)
    out = tmp_path / "out" / "cloud.yaml"
    result = CliRunner().invoke(main, ["import", "--from", str(dump), "--out", str(out)])
    assert result.exit_code == 2 and "nothing written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_dump_describing_a_cloud_labtwin_refuses_is_a_located_error(tmp_path):
    dump = copy_of_dump(tmp_path)
    ports = json.loads((dump / "ports.json").read_text())
    ports["ports"][4]["fixed_ips"][0]["ip_address"] = "10.0.0.10"  # the address another port holds
    (dump / "ports.json").write_text(json.dumps(ports))
    with pytest.raises(DumpError, match=r"labtwin's loader refuses .*\n.*10\.0\.0\.10"):
        import_cloud(dump)


def test_an_empty_or_missing_directory_says_what_to_put_there(tmp_path):
    with pytest.raises(DumpError, match="no \\*.json file"):
        import_cloud(tmp_path)
    with pytest.raises(DumpError, match="not a directory"):
        import_cloud(tmp_path / "nowhere")


def test_the_command_line_writes_the_topology_and_the_report(tmp_path):
    out = tmp_path / "mycloud.yaml"
    result = CliRunner().invoke(main, ["import", "--from", str(API_REF), "--out", str(out), "--name", "mycloud"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stdout and "8 things not expressible" in result.stdout
    assert load_cloud(out).name == "mycloud" and (tmp_path / REPORT_NAME).exists()
    shown = CliRunner().invoke(main, ["show", str(out)])
    assert "web-server-1 ('web server #1')" in shown.stdout  # both names


def test_a_generated_thousand_host_dump_imports(tmp_path):
    write_dump(tmp_path / "big", hosts=100, ports=2000, hosts_per_rack=20)
    cloud = import_cloud(tmp_path / "big").cloud
    assert len(cloud.ports) == 2000 and len([h for h in cloud.hosts if h.role == "compute"]) == 100
    assert {h.rack for h in cloud.hosts if h.role == "compute"} == {f"rack{i}" for i in range(2, 7)}


# --- --anonymize ---------------------------------------------------------------------------------------------


SECRET_FIELDS = ("name", "id", "ip_address", "cidr", "gateway_ip", "mac_address", "floating_ip_address", "host",
                 "binding:host_id", "start", "end")  # fmt: skip


def neutron_strings(directory: Path) -> set[str]:
    """Every name, id, address and MAC of a dump (strings a shared review must not show)."""
    found: set[str] = set()

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in SECRET_FIELDS:
            found.add(value)

    for path in directory.glob("*.json"):
        walk(json.loads(path.read_text()))
    return {s for s in found if len(s) > 3 and s not in ("default", "public", "private", "router1")}


def test_an_anonymized_import_shows_no_name_id_address_or_mac_of_the_dump(tmp_path):
    topology, report = write(import_cloud(API_REF, anonymize=True), tmp_path / "cloud.yaml")
    text = topology.read_text() + report.read_text()
    leaked = sorted(s for s in neutron_strings(API_REF) if s in text)
    assert leaked == []
    assert "web server" not in text and "example.org" not in text and "## Anonymized" in report.read_text()


def test_an_anonymized_cloud_keeps_sizes_and_relations(imported):
    anonymous = import_cloud(API_REF, anonymize=True).cloud
    original = imported.cloud
    for kind in ("hosts", "networks", "segments", "subnets", "routers", "security_groups", "ports", "floatingips"):
        assert len(getattr(anonymous, kind)) == len(getattr(original, kind))
    assert [s.cidr.prefixlen for s in anonymous.subnets] == [s.cidr.prefixlen for s in original.subnets]
    gateways = lambda cloud: [int(s.gateway_ip) - int(s.cidr.network_address) for s in cloud.subnets]  # noqa: E731
    assert gateways(anonymous) == gateways(original)
    where = lambda cloud: [(p.host, p.network_id, [f.subnet_id for f in p.fixed_ips]) for p in cloud.ports]  # noqa: E731
    names = {o.name: a.name for kind in ("hosts", "networks", "subnets") for o, a in
             zip(getattr(original, kind), getattr(anonymous, kind))}  # fmt: skip
    assert where(anonymous) == [(names[h], names[n], [names[s] for s in subs]) for h, n, subs in where(original)]


def test_a_design_question_has_the_same_answer_on_the_anonymized_cloud(tmp_path):
    from labtwin import api

    write_dump(tmp_path / "dump", hosts=40, ports=400, hosts_per_rack=20)
    answers = []
    for anonymize in (False, True):
        out = tmp_path / ("anon" if anonymize else "plain") / "cloud.yaml"
        write(import_cloud(tmp_path / "dump", anonymize=anonymize), out)
        run = api.simulate("sg-fanout", out, seed=1, firewall="ipset")
        answers.append({k: run.summary[k] for k in ("members", "hosts_with_members", "rules_written", "updates_total")})
    assert answers[0] == answers[1] and answers[0]["members"] == 400


# --- openstack ... -f json tables ------------------------------------------------------------------------------

OPENSTACK_CLI = Path(__file__).parent / "inputs" / "import" / "openstack-cli"


def test_the_openstack_clients_tables_import_with_what_they_lack_said():
    imported = import_cloud(OPENSTACK_CLI)
    cloud = imported.cloud
    assert [h.name for h in cloud.hosts] == ["network-1", "compute-1", "compute-2", "compute-3"]
    assert cloud.host["network-1"].role == "network" and not cloud.host["compute-1"].bridge_mappings
    assert all(p.host is None for p in cloud.ports)  # `port list --long` has no binding host
    assert cloud.port["web-server-1"].network_id == "private"  # from the subnet of its first fixed IP
    assert cloud.router["router1"].interfaces == ("private-subnet",)  # from `router show`'s interfaces_info
    assert cloud.router["router1"].external_gateway_info.network_id == "public"
    rules = {(r.protocol, r.port_range_min, r.port_range_max, str(r.remote_ip_prefix) if r.remote_ip_prefix else None,
              r.remote_group_id) for r in cloud.security_group["web"].rules}  # fmt: skip
    assert {("tcp", 443, 443, None, None), ("icmp", 8, None, None, "default")} <= rules
    notes = "\n".join(imported.report.assumed)
    assert "port-list.json: `openstack port list --long -f json`: no binding host" in notes
    assert "network-agent-list.json: `openstack network agent list --long -f json`: no configuration" in notes


def test_the_api_and_the_tables_agree_on_what_both_say(imported):
    tables = import_cloud(OPENSTACK_CLI).cloud
    api = imported.cloud
    for kind in ("networks", "subnets", "security_groups", "ports", "floatingips"):
        assert [o.name if hasattr(o, "name") else o.port_id for o in getattr(tables, kind)] == [
            o.name if hasattr(o, "name") else o.port_id for o in getattr(api, kind)
        ]
    assert [[str(f.ip_address) for f in p.fixed_ips if f.subnet_id != "ipv6-private-su"] for p in tables.ports] == [
        [str(f.ip_address) for f in p.fixed_ips if f.subnet_id != "ipv6-private-su"] for p in api.ports
    ]
    strip = lambda g: {(r.direction, r.ethertype, r.protocol, r.port_range_min, r.port_range_max, r.remote_group_id)  # noqa: E731
                       for r in g.rules}  # fmt: skip
    assert [strip(g) for g in tables.security_groups] == [strip(g) for g in api.security_groups]


AGENT = {"ID": "x", "Agent Type": "L3 agent", "Host": "net-1", "Alive": True}


@pytest.mark.parametrize(
    "rows, message",
    [
        ([AGENT, {k: v for k, v in AGENT.items() if k != "Host"}], r"t\.json: \$\[1\]: no 'Host' column"),
        ([{"Foo": 1}], r"t\.json: \$: a JSON list, but not a table labtwin reads \(the `-f json` output of: "),
    ],
)
def test_a_table_row_missing_a_column_or_an_unknown_table_is_located(tmp_path, rows, message):
    (tmp_path / "t.json").write_text(json.dumps(rows))
    with pytest.raises(DumpError, match=message):
        import_cloud(tmp_path)


def test_a_segment_list_without_its_physical_networks_imports_without_those_segments(tmp_path):
    dump = tmp_path / "dump"
    shutil.copytree(OPENSTACK_CLI, dump)
    rows = json.loads((dump / "network-segment-list.json").read_text())
    (dump / "network-segment-list.json").write_text(
        json.dumps([{k: v for k, v in r.items() if k != "Physical Network"} for r in rows])
    )
    imported = import_cloud(dump)
    assert not imported.cloud.segments
    assert sum("no physical network given" in what for _, _, what in imported.report.dropped) == 2


@pytest.mark.parametrize(
    "scenario, knobs", [("sg-fanout", {}), ("multisegment", {"segments_per_host": "many"}), ("dvr", {})]
)
def test_every_scenario_runs_on_an_imported_cloud(imported, tmp_path, scenario, knobs):
    from labtwin import api

    topology, _ = write(imported, tmp_path / "cloud.yaml")
    run = api.simulate(scenario, topology, seed=1, **knobs)
    expected = {"sg-fanout": ("group", "default"), "multisegment": ("network", "multi-segment-n"),
                "dvr": ("router_modes", {"router1": "legacy (topology)"})}[scenario]  # fmt: skip
    assert run.summary[expected[0]] == expected[1]
