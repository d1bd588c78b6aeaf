"""Real OVN in a run: a private central (NB and SB databases, ovn-northd) and a chassis per emulated host.

The recipe is the feasibility study's (``../shared/reference/real-parts.md`` part A), with OVN's
programs unpacked by ``make setup`` (:mod:`.ovn_install`):

- **central** (:func:`start_central`): ``ovsdb-server`` s on fresh ``ovn-nb`` and ``ovn-sb``
  databases and ``ovn-northd``, in the root namespace (they listen on unix sockets only) with
  every file in ``/run/labtwin/ovn/<run>``;
- **chassis** (:func:`start_chassis`): on a host namespace that already runs its private OVS
  (:mod:`.private_ovs`): ``br-phy`` owning the host's underlay device with the chassis's
  Geneve address on its internal port (userspace tunnelling routes through the namespace's
  own tables), ``br-int`` (netdev, fail-mode secure), the ``Open_vSwitch`` external_ids
  ``ovn-controller`` reads (``system-id``, ``ovn-remote``, ``ovn-encap-type=geneve``,
  ``ovn-encap-ip``, ``ovn-bridge-datapath-type=netdev``), then ``ovn-controller`` itself,
  sharing the OVS run directory (it finds OpenFlow at ``$OVS_RUNDIR/br-int.mgmt``; its own
  control socket is ``$OVN_RUNDIR/ovn-controller.<pid>.ctl``).

Every daemon and directory is ledgered before it exists, so a crash followed by
``labtwin clean`` removes them. Nothing here reaches the machine's own OVS: every command
names its database or socket by absolute path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from .ledger import Item
from .ovn_install import ovn_program, ovn_root
from .private_ovs import PrivateOvs, spawn_daemon, wait_for_socket
from .runner import Step, in_netns
from .snapshot import OVN_RUNS  # each run's OVN central: databases, sockets, logs

INTEGRATION_BRIDGE, UNDERLAY_BRIDGE = "br-int", "br-phy"
#: The NB tables a Neutron deployment writes (NB_Global left out: it carries the sync counters).
NB_TABLES = (
    "Logical_Switch",
    "Logical_Switch_Port",
    "Port_Group",
    "ACL",
    "Address_Set",
    "DHCP_Options",
    "Logical_Router",
    "Logical_Router_Port",
    "NAT",
    "Gateway_Chassis",
    "HA_Chassis_Group",
    "HA_Chassis",
    "Logical_Router_Static_Route",
    "Meter",
)
#: The SB tables ovn-northd writes for them (SB_Global, Chassis and Chassis_Private left out: the chassis
#: write those).
SB_TABLES = (
    "Logical_Flow",
    "Logical_DP_Group",
    "Port_Group",
    "Address_Set",
    "Port_Binding",
    "Multicast_Group",
    "Datapath_Binding",
    "MAC_Binding",
)


@dataclass(frozen=True)
class OvnCentral:
    """A run's NB and SB databases and ovn-northd: where their sockets are."""

    rundir: str

    @property
    def nb(self) -> str:
        return f"unix:{self.rundir}/nb.sock"

    @property
    def sb(self) -> str:
        return f"unix:{self.rundir}/sb.sock"

    def nbctl(self, *args: str) -> tuple[str, ...]:
        return (str(ovn_program("ovn-nbctl")), f"--db={self.nb}", "--timeout=30", *args)

    def sbctl(self, *args: str) -> tuple[str, ...]:
        return (str(ovn_program("ovn-sbctl")), f"--db={self.sb}", "--timeout=30", *args)

    def nb_rows(self, runner, tables: tuple[str, ...]) -> dict[str, dict[str, dict]]:
        """Every row of the NB *tables*: table -> uuid -> its columns (OVSDB's JSON: sets and maps tagged)."""
        return _rows(runner, self.nb, "OVN_Northbound", tables)

    def sb_rows(self, runner, tables: tuple[str, ...]) -> dict[str, dict[str, dict]]:
        """The same for the SB."""
        return _rows(runner, self.sb, "OVN_Southbound", tables)


def _rows(runner, db: str, schema: str, tables: tuple[str, ...]) -> dict[str, dict[str, dict]]:
    """One ``ovsdb-client transact`` selecting every row of *tables*; a failed select raises, naming it."""
    ops = [{"op": "select", "table": t, "where": []} for t in tables]
    client = ("ovsdb-client", "transact", db, json.dumps([schema, *ops]))
    answer = json.loads(runner.run(Step(client, what=f"OVN: read {schema}")).stdout)
    rows = {}
    for table, result in zip(tables, answer):
        if "rows" not in result:
            raise RuntimeError(f"reading {schema}.{table} from {db} failed: {result}")
        rows[table] = {
            r["_uuid"][1]: {k: v for k, v in r.items() if k not in ("_uuid", "_version")} for r in result["rows"]
        }
    return rows


def start_central(real) -> OvnCentral:
    """The run's OVN central: NB and SB ovsdb-servers and ovn-northd, ledgered; returns where they listen."""
    central = OvnCentral(os.path.join(OVN_RUNS, real.plan.run_id))
    rundir = central.rundir
    real.ledger.append([Item(f"dir:{rundir}", "directory", rundir, undo=("rm", "-rf", "--", rundir))])
    os.makedirs(rundir, exist_ok=True)
    schemas = ovn_root() / "usr" / "share" / "ovn"
    for db in ("nb", "sb"):
        schema = schemas / f"ovn-{db}.ovsschema"
        real.runner.run(Step(("ovsdb-tool", "create", f"{rundir}/{db}.db", str(schema)), what=f"OVN {db} database"))
        server = (
            "ovsdb-server",
            f"{rundir}/{db}.db",
            f"--remote=punix:{rundir}/{db}.sock",
            f"--unixctl={rundir}/{db}.ctl",
            f"--log-file={rundir}/{db}.log",
        )
        spawn_daemon(real, server, f"proc:ovn-{db}:{real.plan.run_id}", f"OVN {db} database", rundir, f"{db}-db")
        wait_for_socket(f"{rundir}/{db}.sock", f"the OVN {db} ovsdb-server", f"{rundir}/{db}-db.stderr")
    northd = (
        str(ovn_program("ovn-northd")),
        f"--ovnnb-db={central.nb}",
        f"--ovnsb-db={central.sb}",
        f"--unixctl={rundir}/northd.ctl",
        f"--log-file={rundir}/northd.log",
    )
    spawn_daemon(real, northd, f"proc:ovn-northd:{real.plan.run_id}", "ovn-northd", rundir, "northd")
    real.runner.run(Step(central.nbctl("--no-wait", "init"), what="OVN northbound: init"))
    return central


@dataclass(frozen=True)
class ProviderBridge:
    """A chassis's bridge onto a physical network (``ovn-bridge-mappings``): OVN's ``localnet`` ports of
    networks on *physnet* leave the chassis through *device* (the host's interface to that physnet)."""

    physnet: str
    bridge: str
    device: str


def start_chassis(
    real,
    key: str,
    ovs: PrivateOvs,
    central: OvnCentral,
    underlay: str,
    encap_cidr: str,
    hostname: str = "",
    providers: tuple[ProviderBridge, ...] = (),
    gateway: bool = False,
) -> str:
    """Make the host of namespace *key* (running *ovs*) an OVN chassis named after it; returns its name.

    *underlay*: the host's device on the underlay (it goes on ``br-phy``); *encap_cidr*: the chassis's
    Geneve address with its prefix length, put on ``br-phy``'s internal port. *hostname*: the name
    Neutron binds ports to (``binding:host_id``; default the chassis's name). *providers*: its bridges
    onto physical networks. *gateway*: the chassis may host gateway ports, marked as Neutron's
    deployment tools mark it (``ovn-cms-options=enable-chassis-as-gw``).
    """
    name = os.path.basename(ovs.rundir)
    pid = real.pid(key)
    bridges = [
        *("--may-exist", "add-br", UNDERLAY_BRIDGE, "--", "set", "Bridge", UNDERLAY_BRIDGE, "datapath_type=netdev"),
        *("--", "--may-exist", "add-port", UNDERLAY_BRIDGE, underlay),
        *("--", "--may-exist", "add-br", INTEGRATION_BRIDGE, "--", "set", "Bridge", INTEGRATION_BRIDGE),
        *("datapath_type=netdev", "fail_mode=secure", "other-config:disable-in-band=true"),
    ]
    for provider in providers:
        bridges += ["--", "--may-exist", "add-br", provider.bridge, "--", "set", "Bridge", provider.bridge]
        bridges += ["datapath_type=netdev", "--", "--may-exist", "add-port", provider.bridge, provider.device]
    identity = [
        *("--", "set", "Open_vSwitch", ".", f"external_ids:system-id={name}"),
        f"external_ids:hostname={hostname or name}",
        *(f"external_ids:ovn-remote={central.sb}", "external_ids:ovn-encap-type=geneve"),
        *(f"external_ids:ovn-encap-ip={encap_cidr.split('/')[0]}", "external_ids:ovn-bridge-datapath-type=netdev"),
    ]
    if providers:
        mappings = ",".join(f"{p.physnet}:{p.bridge}" for p in providers)
        identity.append(f'external_ids:ovn-bridge-mappings="{mappings}"')
    if gateway:
        identity.append("external_ids:ovn-cms-options=enable-chassis-as-gw")
    real.runner.run(Step(ovs.vsctl(*bridges, *identity), what=f"{ovs.host}: br-phy, br-int and its OVN identity"))
    real.runner.run(
        Step(
            in_netns(pid, ("ip", "-batch", "-")),
            what=f"{ovs.host}: its Geneve address on br-phy",
            stdin=f"addr add {encap_cidr} dev {UNDERLAY_BRIDGE}\nlink set {UNDERLAY_BRIDGE} up\n"
            f"link set {underlay} up\n"
            + "".join(f"link set {p.device} up\nlink set {p.bridge} up\n" for p in providers),
        )
    )
    controller = (str(ovn_program("ovn-controller")), ovs.db, f"--log-file={ovs.rundir}/ovn-controller.log")
    env = ("env", f"OVS_RUNDIR={ovs.rundir}", f"OVN_RUNDIR={ovs.rundir}")
    spawn_daemon(
        real,
        (*env, *controller),
        f"proc:ovn-controller:{name}",
        f"{ovs.host}: its ovn-controller",
        ovs.rundir,
        "ovn-controller",
        pid,
        match=controller,
    )
    return name
