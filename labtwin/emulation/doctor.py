"""Is emulation possible here? Each reason says what to do.

``labtwin doctor`` calls :func:`emulation_possible`; it starts Open vSwitch
(``ovs-ctl start``) when it is installed but stopped, as this machine has no
systemd.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from .runner import Runner, Step

OVS_CTL = Path("/usr/share/openvswitch/scripts/ovs-ctl")
TOOLS = {"mnexec": "mininet", "nsenter": "util-linux", "ip": "iproute2", "iptables-restore": "iptables",
         "ipset": "ipset", "tcpdump": "tcpdump", "ovs-vsctl": "openvswitch-switch"}


def emulation_possible(start_ovs: bool = True) -> tuple[bool, list[str]]:
    """(possible, reasons it is not): root, tools, Python modules, a running OVS."""
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root: run as root (namespaces, veth and OVS need it)")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            reasons.append(f"{tool} missing: apt-get install {package}")
    for module, hint in (("mininet", "pip install mininet==2.3.0.dev6"), ("scapy", "pip install scapy")):
        if importlib.util.find_spec(module) is None:
            reasons.append(f"Python module {module} missing: {hint}")
    if shutil.which("ovs-vsctl") is not None and not ovs_running():
        if start_ovs and OVS_CTL.exists() and os.geteuid() == 0:
            Runner().run(Step((str(OVS_CTL), "start", "--system-id=random"), what="start OVS", check=False, timeout=60))
        if not ovs_running():
            reasons.append(f"Open vSwitch not running: {OVS_CTL} start --system-id=random")
    return not reasons, reasons


def ovs_running() -> bool:
    result = Runner().run(Step(("ovs-vsctl", "--timeout=5", "show"), what="OVS status", check=False, timeout=10))
    return result.ok
