"""Neutron's own API server with ML2/OVN, writing a run's OVN northbound database: the ``ovn`` control plane.

Under ``control=ovn`` nothing of labtwin writes OVN rows: Neutron 29's ML2 plugin with the ``ovn``
mechanism driver (``neutron/plugins/ml2/drivers/ovn/mech_driver``, its ``ovn_client.py`` and
``neutron/common/ovn/acl.py``) turns each API call into the NB rows a real deployment gets
(``neutron-<id>`` logical switches, ports with ``neutron:*`` external_ids, ``pg_<id>`` port groups
with their ACLs, ``neutron_pg_drop``), in the run's private NB (:func:`labtwin.emulation.ovn_run.
start_central`); OVN's own northd and ovn-controllers do the rest. The server is the API oracle's
(:class:`labtwin.oracle.server.NeutronServer`, in-process over sqlite) configured for OVN.

One child process per run (Neutron's configuration is process-wide), driven over stdin/stdout with
JSON lines through the same :class:`~labtwin.emulation.neutron_agent.NeutronWorker` transport as
the agents:

- ``{"op": "start", "nb", "sb", "physnets", "options", "tmpdir"}``: start the server against those
  connections, VLANs allowed on those physnets, its temporary files in *tmpdir*
  (~6 s: importing Neutron and starting its plugins);
- ``{"op": "post"|"put"|"delete"|"get", "path", "body"}``: one API request, answered with
  ``{"status", "body", "start", "took"}`` (``perf_counter``, the machine's monotonic clock);
- ``{"op": "load", "cloud", "macs"}``: create a whole cloud (a pickled
  :class:`~labtwin.description.Cloud`, base64) with the API oracle's loader
  (:func:`labtwin.oracle.load.load_into_neutron`), ports with the given MACs; answered with
  ``{"refused": [[where, answer]...], "ports": {name: {"id", "mac", "ips"}}}``;
- ``{"op": "stop"}``.

``python -m labtwin.emulation.ovn_server --run RID`` (the run id makes the argv unique, so the
run's ledger finds the process by it).

Known, left as is: **this server drops OVN's events.** Outside uwsgi, mod_wsgi or an ASGI server,
Neutron 29 cannot count its API workers (``wsgi_utils.get_api_worker_count``), so the OVN driver's
hash ring raises "The Neutron API workers count is zero" in every NB and SB event handler, which
logs and drops the event: this server never processes a port going up. Setting ``ASGI_WORKERS=1``
makes it process them, but then its event handlers use the database from the OVSDB threads while
an API request holds it: the in-memory sqlite connection fails ("IntegrityError: not an error") and
a file-backed one locks ("database is locked"). Processing events needs a database server; until
then what a port going up changes is done by hand
(:func:`labtwin.emulation.ovn_cloud._floating_ips_after_ports_up`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import sys
import tempfile
import time
from typing import Optional

from labtwin.emulation.ledger import Item
from labtwin.emulation.neutron_agent import NeutronWorker, serve_lines
from labtwin.emulation.runner import Step

SERVER_MODULE = "labtwin.emulation.ovn_server"
#: Importing Neutron and starting ML2/OVN: ~6 s here; more than this is a hang.
START_TIMEOUT_S = 180.0
#: One API request: 5-300 ms here; a port update waits for its NB transaction.
REQUEST_TIMEOUT_S = 120.0


class NeutronApiError(RuntimeError):
    """Neutron answered a request with an error (status and Neutron's exception type in the message)."""


class OvnNeutron:
    """The run's Neutron server (a started child process): :meth:`post`, :meth:`put`, :meth:`delete`."""

    def __init__(self, worker) -> None:
        self.worker = worker
        self.last: dict = {}  # the last request's answer (its start and took, as the server timed it)
        self.made: dict = {}  # after load: every port, floating IP and router Neutron made (_what_neutron_made)

    def request(self, op: str, path: str, body: Optional[dict] = None) -> dict:
        """One API request; its answer's ``body``. An error status raises :class:`NeutronApiError`."""
        answer = self.worker.ask({"op": op, "path": path, "body": body}, timeout=REQUEST_TIMEOUT_S)
        if answer["status"] >= 300:
            raise NeutronApiError(f"Neutron answered {op.upper()} {path} with {answer['status']}: {answer['body']}")
        self.last = answer
        return answer["body"]

    def post(self, path: str, body: dict) -> dict:
        return self.request("post", path, body)

    def put(self, path: str, body: dict) -> dict:
        return self.request("put", path, body)

    def delete(self, path: str) -> dict:
        return self.request("delete", path)

    def get(self, path: str) -> dict:
        return self.request("get", path)

    def load(self, cloud, macs: dict[str, str]) -> dict:
        """Create *cloud* in Neutron (see the module docstring); an object Neutron refuses raises."""
        request = {"op": "load", "cloud": base64.b64encode(pickle.dumps(cloud)).decode(), "macs": macs}
        answer = self.worker.ask(request, timeout=START_TIMEOUT_S)
        if answer["refused"]:
            refused = "; ".join(f"{'.'.join(where)}: {said}" for where, said in answer["refused"])
            raise NeutronApiError(f"Neutron (ML2/OVN) refused part of cloud {cloud.name}: {refused}")
        self.made = answer["neutron"]
        return answer["ports"]

    def stop(self) -> None:
        assert self.worker.proc.stdin is not None
        try:
            self.worker.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
            self.worker.proc.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            self.worker.proc.wait(10)
        except Exception:  # noqa: BLE001 -- the teardown kills it by its ledger entry anyway
            self.worker.proc.kill()


class SpawnedServer:
    """The run's Neutron server process, importing Neutron while the caller does something else (starting the
    chassis); :meth:`start` then starts ML2/OVN in it."""

    def __init__(self, worker: NeutronWorker, central) -> None:
        self.worker, self.central = worker, central

    def start(
        self,
        physnets: tuple[str, ...] = ("physnet1",),
        options: Optional[dict] = None,
        default_rules: Optional[list[dict]] = None,
    ) -> OvnNeutron:
        """Start the plugins against the central's NB and SB, with VLANs allowed on *physnets* (ML2's
        ``network_vlan_ranges``), *options* set in its ``[ovn]`` section, and *default_rules* as the default
        security-group rule templates (None: Neutron's own)."""
        start = {
            "op": "start",
            "nb": self.central.nb,
            "sb": self.central.sb,
            "physnets": physnets,
            "options": options or {},
            "default_rules": default_rules,
            "tmpdir": self.central.rundir,  # removed with the run's central
        }
        self.worker.ask(start, timeout=START_TIMEOUT_S)
        return OvnNeutron(self.worker)


def spawn_server(real, central) -> SpawnedServer:
    """The run's Neutron server process, ledgered before it starts; it imports Neutron's modules at once
    (:func:`_import_early`), so that a run can start its chassis meanwhile."""
    argv = (sys.executable, "-m", SERVER_MODULE, "--run", real.plan.run_id)
    item = Item(f"proc:neutron-server:{real.plan.run_id}", "process", "Neutron's server (ML2/OVN)", match=argv)
    stderr_path = os.path.join(central.rundir, "neutron-server.stderr")
    with open(stderr_path, "w") as stderr:
        proc = real.runner.spawn(
            Step(argv, what="Neutron's server with ML2/OVN", creates=(item,)), talk=True, stderr_to=stderr
        )
    return SpawnedServer(NeutronWorker("neutron-server", "", proc, stderr_path), central)


def _import_early() -> None:
    """Import what starting the server imports (about 4 s of its 6), before any request: none of it needs
    the configuration. A missing Neutron is left for the start request to report (NeutronMissing)."""
    import warnings

    warnings.filterwarnings("ignore")
    try:
        import webtest  # noqa: F401
        from neutron import manager  # noqa: F401
        from neutron.api.v2 import router  # noqa: F401
        from neutron.plugins.ml2 import plugin  # noqa: F401
        from neutron.plugins.ml2.drivers.ovn.mech_driver import mech_driver  # noqa: F401
    except ImportError:
        return


def serve(lines, out) -> int:
    servers: list = []

    def handle(request: dict) -> dict:
        if request["op"] == "start":
            from labtwin.oracle.server import NeutronServer

            _private_temporary_files(request["tmpdir"])
            ovn = (request["nb"], request["sb"])
            server = NeutronServer(request["physnets"], ovn, request.get("options"))
            servers.append(server.start(request.get("default_rules")))
            return {"started": True}
        if not servers:
            raise RuntimeError(f"{request['op']} before start")
        if request["op"] == "load":
            return _load(servers[-1], request)
        if request["op"] in ("post", "put", "delete", "get"):
            return _ask(servers[-1], request)
        raise ValueError(f"unknown op {request['op']!r}")

    return serve_lines(lines, out, handle)


def _private_temporary_files(private_dir: str) -> None:
    """Neutron's WSGI helpers write ``neutron_start_time<ppid>`` (the hash ring's start time) into the temporary
    directory; this server's go to *private_dir*, removed with the run, not into the machine's /tmp."""
    tempfile.tempdir = private_dir


def _load(server, request: dict) -> dict:
    from labtwin.oracle.load import load_into_neutron

    cloud = pickle.loads(base64.b64decode(request["cloud"]))
    load = load_into_neutron(cloud, server, request["macs"], agents=False, router_modes=False)
    refused = [
        [list(map(str, where)), answer.described()]
        for where, answer in load.answers.items()
        if not answer.ok and answer.error != "SecurityGroupRuleExists"  # a rule the file repeats: it is there
    ]
    ports = {
        load.names.get(p["id"], p["name"]): {
            "id": p["id"],
            "mac": p["mac_address"],
            "ips": [f["ip_address"] for f in p["fixed_ips"]],
            "device_owner": p["device_owner"],
        }
        for p in server.get("/ports").body["ports"]
    }
    return {"refused": refused, "ports": ports, "neutron": _what_neutron_made(server, load)}


def _what_neutron_made(server, load) -> dict:
    """Every port (router-owned ones included), floating IP and router as Neutron holds them, with labtwin's
    names where the file has one: what an emulation needs to name what it sees on the wire."""
    subnet_name = {s["id"]: s["name"] for s in server.get("/subnets").body["subnets"]}
    return {
        "ports": [
            {
                "id": p["id"],
                "name": load.names.get(p["id"], p["name"]),
                "mac": p["mac_address"],
                "device_owner": p["device_owner"],
                "device_id": p["device_id"],
                "fixed_ips": [{"subnet": subnet_name[f["subnet_id"]], "ip": f["ip_address"]} for f in p["fixed_ips"]],
            }
            for p in server.get("/ports").body["ports"]
        ],
        "floatingips": [
            {"address": f["floating_ip_address"], "port": load.names.get(f["port_id"], f["port_id"])}
            for f in server.get("/floatingips").body["floatingips"]
        ],
        "routers": {r["name"]: r["id"] for r in server.get("/routers").body["routers"]},
        "networks": [{"id": n["id"], "name": n["name"]} for n in server.get("/networks").body["networks"]],
        "gateways": {s["name"]: s["gateway_ip"] for s in server.get("/subnets").body["subnets"]},
    }


def _ask(server, request: dict) -> dict:
    op, path, body = request["op"], request["path"], request.get("body")
    start = time.perf_counter()
    answer = getattr(server, op)(path, body) if op in ("post", "put") else getattr(server, op)(path)
    return {"status": answer.status, "body": answer.body, "start": start, "took": time.perf_counter() - start}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True)
    parser.parse_args(argv)
    answers = os.fdopen(os.dup(1), "w")  # the answers' channel; anything Neutron or OVS print goes to stderr
    os.dup2(2, 1)
    _import_early()
    code = serve(sys.stdin, answers)
    answers.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the OVN driver's IDL threads never end by themselves


if __name__ == "__main__":
    main()
