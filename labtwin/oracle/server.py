"""Neutron's own API server, in this process, over an in-memory sqlite database.

Neutron 29.0.0's ML2 plugin with the ``segments`` and ``router`` service plugins, answering
requests through its real API layer (pecan, policy, attribute defaults and validation), the
way Neutron's unit tests run it (``neutron/tests/base.py``, ``neutron/tests/unit/testlib_api.py``).
Nothing listens on a socket and nothing leaves the process: the answers (HTTP status, body,
Neutron's exception type) are what a real server of that release gives for the same requests.

Neutron's configuration and plugin registry are process-wide, so one process serves one cloud
(:func:`labtwin.oracle.run.ask_neutron` forks a child per cloud). Each setting below says why it
is there; measured here: importing Neutron ~2.5 s, starting the plugins ~1 s, a request 5-300 ms.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Optional

#: The project every object belongs to: without Keystone, Neutron's API needs one on each request.
PROJECT = "labtwin"


class NeutronMissing(RuntimeError):
    """Neutron's server code is not installed (the ``neutron`` extra; ``make setup`` installs it)."""


@dataclass(frozen=True)
class Answer:
    """One response: the HTTP status and body; for an error, Neutron's exception type and message."""

    status: int
    body: dict

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def error(self) -> str:
        """Neutron's exception type (``IpAddressGenerationFailure``), or '' on success."""
        return "" if self.ok else str(self.body.get("NeutronError", {}).get("type", f"HTTP {self.status}"))

    @property
    def message(self) -> str:
        return "" if self.ok else str(self.body.get("NeutronError", {}).get("message", ""))

    def described(self) -> str:
        return f"{self.status} {self.error}: {self.message}" if not self.ok else f"{self.status}"


class NeutronServer:
    """A started Neutron API (:meth:`start`); :meth:`post`, :meth:`put` and :meth:`get` ask it."""

    def __init__(
        self, physnets: Iterable[str], ovn: Optional[tuple[str, str]] = None, ovn_options: Optional[dict] = None
    ):
        """*ovn*: the (NB, SB) connections of a running OVN central, for ML2/OVN (:meth:`_ovn`); else ML2/OVS.
        *ovn_options*: options of Neutron's ``[ovn]`` section to set (``enable_distributed_floating_ip``)."""
        self.physnets = sorted(set(physnets))
        self.ovn = ovn
        self.ovn_options = dict(ovn_options or {})
        self.app: Any = None
        self.context: Any = None

    def start(self, default_rules: Optional[list[dict]] = None) -> "NeutronServer":
        """Start the plugins and the API; *default_rules* replace Neutron's own default-rule templates
        (the cloud's ``default_security_group_rules``, when it gives them)."""
        _import_neutron()
        _quiet()
        self._configure()
        self._create_schema()
        import webtest
        from neutron import manager
        from neutron.api.v2 import router
        from neutron_lib import context

        _no_nova_notifications()
        _no_agent_pushes()
        manager.init()
        if self.ovn is not None:
            _connect_ovn()
        self.app = webtest.TestApp(router.APIRouter())
        # An admin of the project: Neutron 29's policies (new defaults) let an admin set provider
        # attributes, binding:host_id, distributed and ha, as an operator's tooling does.
        self.context = context.Context(
            user_id=PROJECT, project_id=PROJECT, is_admin=True, roles=["admin", "member", "reader"]
        )
        self._default_rule_templates(_migration_default_rules() if default_rules is None else default_rules)
        return self

    def _default_rule_templates(self, rules: list[dict]) -> None:
        """The rules Neutron adds to every new group, as a real deployment has them: the schema is made
        from the models (``create_all``), which leaves out the data the migration ``c33da356b165`` inserts
        (egress IPv4/IPv6 for every group; ingress from the group itself for ``default``). Its own list
        is posted through Neutron's API (``/default-security-group-rules``)."""
        for rule in rules:
            body = {k: v for k, v in rule.items() if k not in ("id", "description") and v is not None}
            answer = self.post("/default-security-group-rules", {"default_security_group_rule": body})
            if not answer.ok:
                raise RuntimeError(f"Neutron refused its own default rule template {body}: {answer.described()}")

    def post(self, path: str, body: dict) -> Answer:
        return self._answer(self.app.post_json(path, body, extra_environ=self._environ(), expect_errors=True))

    def put(self, path: str, body: dict) -> Answer:
        return self._answer(self.app.put_json(path, body, extra_environ=self._environ(), expect_errors=True))

    def delete(self, path: str) -> Answer:
        return self._answer(self.app.delete(path, extra_environ=self._environ(), expect_errors=True))

    def get(self, path: str) -> Answer:
        return self._answer(self.app.get(path, extra_environ=self._environ(), expect_errors=True))

    def register_agent(self, agent: dict) -> None:
        """What an agent's state report does (``create_or_update_agent``): the server learns its host,
        type and configuration, and (for an L2 agent with ``bridge_mappings``) Neutron's own callback
        maps the host to the segments of those physnets."""
        from neutron_lib.plugins import directory
        from oslo_utils import timeutils

        directory.get_plugin().create_or_update_agent(self.context, agent, timeutils.utcnow())

    def override(self, option: str, value: Any, group: Optional[str] = None) -> None:
        """Set one of Neutron's options for what follows (this process serves one cloud)."""
        from oslo_config import cfg

        cfg.CONF.set_override(option, value, group=group)

    def _environ(self) -> dict:
        return {"neutron.context": self.context}

    @staticmethod
    def _answer(response: Any) -> Answer:
        body = response.json if response.body else {}
        return Answer(response.status_int, body if isinstance(body, dict) else {"value": body})

    def _configure(self) -> None:
        from neutron.common import config as common_config
        from neutron.conf.plugins.ml2 import config as ml2_config
        from neutron.conf.plugins.ml2.drivers import driver_type
        from oslo_config import cfg
        from oslo_db import options as db_options

        common_config.register_common_config_options()
        common_config.init([])  # no config files: every setting is below
        conf = cfg.CONF
        conf.set_override("transport_url", "fake:/")  # oslo.messaging's in-memory driver: RPC goes nowhere
        db_options.set_defaults(conf, connection="sqlite://")  # in-memory, gone with the process
        conf.set_override(
            "connection_recycle_time", -1, group="database"
        )  # as the unit tests: keep the one sqlite connection
        conf.set_override("core_plugin", "ml2")
        conf.set_override("service_plugins", ["segments", "router"])  # routed networks; routers and floating IPs
        ml2_config.register_ml2_plugin_opts()
        for register in (
            driver_type.register_ml2_drivers_flat_opts,
            driver_type.register_ml2_drivers_vlan_opts,
            driver_type.register_ml2_drivers_vxlan_opts,
            driver_type.register_ml2_drivers_geneve_opts,
        ):
            register()
        conf.set_override("type_drivers", ["flat", "vlan", "vxlan", "geneve"], group="ml2")  # geneve: ML2/OVN's
        conf.set_override("mechanism_drivers", ["openvswitch"], group="ml2")  # ML2/OVS, as the emulation builds
        conf.set_override("extension_drivers", ["port_security"], group="ml2")  # port_security_enabled
        conf.set_override("project_network_types", ["vxlan"], group="ml2")  # a network without segments: a VNI
        conf.set_override("network_vlan_ranges", self.physnets, group="ml2_type_vlan")  # VLANs on every physnet
        conf.set_override("flat_networks", ["*"], group="ml2_type_flat")
        conf.set_override("vni_ranges", ["1:65535"], group="ml2_type_vxlan")
        conf.set_override("vni_ranges", ["1:65535"], group="ml2_type_geneve")
        if self.ovn is not None:
            self._ovn(conf, *self.ovn)
            for option, value in self.ovn_options.items():
                conf.set_override(option, value, group="ovn")
        from neutron_lib import rpc

        rpc.init(conf)

    @staticmethod
    def _ovn(conf, nb: str, sb: str) -> None:
        """ML2/OVN, as a Neutron deployment with OVN configures it: the ``ovn`` mechanism driver writes every
        network, port and security group into the NB at *nb* (and reads the chassis from the SB at *sb*); routers
        are the ``ovn-router`` plugin's;
        project networks are Geneve (``max_header_size`` 38: OVN's own minimum, which Neutron checks)."""
        from neutron.conf.plugins.ml2.drivers.ovn import ovn_conf

        ovn_conf.register_opts()
        conf.set_override("mechanism_drivers", ["ovn"], group="ml2")
        conf.set_override("service_plugins", ["segments", "ovn-router"])
        conf.set_override("project_network_types", ["geneve"], group="ml2")
        conf.set_override("max_header_size", 38, group="ml2_type_geneve")
        conf.set_override("ovn_nb_connection", [nb], group="ovn")
        conf.set_override("ovn_sb_connection", [sb], group="ovn")

    @staticmethod
    def _create_schema() -> None:
        from neutron.db.migration.models import head  # noqa: F401 - imports every model, so every table exists
        from neutron_lib.db import api as db_api
        from neutron_lib.db import model_base

        model_base.BASEV2.metadata.create_all(db_api.CONTEXT_WRITER.get_engine())


def preload_neutron() -> None:
    """Import what :meth:`NeutronServer.start` imports (plugins, every model), touching no configuration:
    a process that forks servers imports them once (see :func:`labtwin.oracle.run.ask_neutron_many`)."""
    _import_neutron()
    import neutron.agent.dhcp.agent  # noqa: F401 - the DHCP agent the oracle plays (labtwin.oracle.dhcp_agent)
    import neutron.db.migration.models.head  # noqa: F401
    import neutron.plugins.ml2.plugin  # noqa: F401
    import neutron.services.l3_router.l3_router_plugin  # noqa: F401
    import neutron.services.segments.plugin  # noqa: F401
    from neutron.api.v2 import router  # noqa: F401


def adopt_database_after_fork() -> None:
    """In a process forked from one that started a server: its in-memory database is this process's own
    copy (fork copied the memory), so oslo.db's guard against a connection shared across a fork, which
    would discard it and open an empty database, is told that this process owns it. The server's engine
    keeps its one connection in a ``StaticPool`` (oslo.db's choice for ``sqlite://``)."""
    import os

    from neutron_lib.db import api as db_api
    from sqlalchemy.pool import StaticPool

    pool = db_api.CONTEXT_WRITER.get_engine().pool
    if not isinstance(pool, StaticPool):
        raise RuntimeError(f"Neutron's database pool is {type(pool).__name__}, not the StaticPool of sqlite://")
    pool.connection.info["pid"] = os.getpid()


def _import_neutron() -> None:
    warnings.filterwarnings("ignore")  # eventlet's deprecation notice, printed on import
    try:
        import neutron  # noqa: F401
        import webtest  # noqa: F401
    except ImportError as exc:
        raise NeutronMissing(
            f"Neutron's server code is not installed ({exc.name} is missing): `make setup` installs the "
            "'neutron' extra (neutron==29.0.0, WebTest)"
        ) from None


def _migration_default_rules() -> list[dict]:
    """``default_template_rules`` of Neutron's migration ``c33da356b165`` (2023.2, security group default
    rules), read from the installed package: its folder name is not an identifier, so it is loaded by path."""
    import importlib.util
    from pathlib import Path

    import neutron.db.migration as migration

    versions = Path(migration.__file__).parent / "alembic_migrations" / "versions"
    path = versions / "2023.2" / "expand" / "c33da356b165_security_group_default_rules.py"
    spec = importlib.util.spec_from_file_location("labtwin_neutron_default_rules", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot read Neutron's default security group rules from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return [dict(rule) for rule in module.default_template_rules]


def _connect_ovn() -> None:
    """What a Neutron API worker does when it starts (``pre_fork_initialize``, then ``post_fork_initialize``
    for a WSGI worker): the drop port group exists, the worker joins the hash ring (its probing thread
    starts), and the OVN driver holds its NB and SB connections with their event handlers, which learn
    the chassis as agents and map hosts to the segments of their bridge mappings. Neutron's own code,
    called in order."""
    from neutron.api import wsgi
    from neutron.common.ovn import utils as ovn_utils
    from neutron_lib.plugins import directory

    ovn_utils.create_neutron_pg_drop()
    driver = directory.get_plugin().mechanism_manager.mech_drivers["ovn"].obj
    driver.post_fork_initialize(None, None, wsgi.WorkerService)


def _no_nova_notifications() -> None:
    """The segments plugin tells Nova's placement service about segment sizes from a background
    thread; there is no Nova here, and the answers do not depend on it (real-parts.md part C)."""
    from neutron.notifiers import batch_notifier

    batch_notifier.BatchNotifier.queue_event = lambda self, event: None


def _no_agent_pushes() -> None:
    """ML2 pushes every changed port, subnet, network and security group (rule) to its agents
    (``ovo_rpc.OVOServerRpcInterface``): after the commit it reads the object back in a session of its own and
    casts it over RPC. No agent listens here and no answer depends on it; it was about 8 % of loading a
    cloud. Checked once: dvr.yaml, multisegment.yaml and sg-fanout.yaml got the same 72 answers with and
    without it, up to random ids; every oracle test still compares each answer with labtwin's."""
    from neutron.plugins.ml2 import ovo_rpc

    class NoPushes:
        """An ``OVOServerRpcInterface`` that subscribes to nothing."""

    ovo_rpc.OVOServerRpcInterface = NoPushes


#: A file to write Neutron's own log to, at DEBUG (every logger), instead of silencing it: for finding out what
#: the server did, e.g. in an event handler whose exceptions Neutron logs and swallows.
LOG_ENV = "LABTWIN_NEUTRON_LOG"


def _quiet() -> None:
    """Neutron logs every request and warns about eventlet; the answers are what matters here (unless
    ``$LABTWIN_NEUTRON_LOG`` names a file for its log)."""
    warnings.filterwarnings("ignore")
    path = os.environ.get(LOG_ENV)
    if path:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.DEBUG)
        return
    logging.getLogger().setLevel(logging.CRITICAL)
    for name in ("neutron", "neutron_lib", "oslo_policy", "oslo_db", "stevedore", "oslo_messaging", "pecan"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def l2_agent(host: str, bridge_mappings: dict[str, str]) -> dict:
    """An Open vSwitch agent's state report for *host* (fields as Neutron's ``tests/common/helpers.py``
    ``_get_l2_agent_dict`` builds them): its bridge mappings map the host to segments."""
    from neutron_lib import constants

    return {
        "binary": constants.AGENT_PROCESS_OVS,
        "host": host,
        "topic": constants.L2_AGENT_TOPIC,
        "agent_type": constants.AGENT_TYPE_OVS,
        "configurations": {
            "bridge_mappings": dict(bridge_mappings),
            "tunnel_types": ["vxlan", "geneve"],
            "tunneling_ip": "192.0.2.1",
        },
        "start_flag": True,
    }


def l3_agent(host: str, mode: str) -> dict:
    """An L3 agent's state report (``_get_l3_agent_dict`` in Neutron's test helpers); *mode* is its
    ``agent_mode`` (``legacy``, ``dvr``, ``dvr_snat``)."""
    from neutron_lib import constants

    return {
        "binary": constants.AGENT_PROCESS_L3,
        "host": host,
        "topic": "l3_agent",
        "agent_type": constants.AGENT_TYPE_L3,
        "configurations": {"agent_mode": mode, "handle_internal_only_routers": True},
    }


def not_none(**fields: Optional[Any]) -> dict:
    """The fields that are set: the API fills the others with Neutron's own defaults."""
    return {k: v for k, v in fields.items() if v is not None}
