"""Probe flows: the data-plane questions a scenario asks (``icmp``, ``tcp:22``, ``udp:53``).

Part of the description because both backends take the same questions: the
model answers them from policy, the emulation with packets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Flow:
    """A probe question: ``protocol`` (icmp/tcp/udp) to destination ``port``."""

    protocol: str
    port: Optional[int] = None

    @classmethod
    def parse(cls, text: str) -> "Flow":
        """``icmp``, ``tcp:22`` or ``udp:53``.

        >>> Flow.parse("tcp:22")
        Flow(protocol='tcp', port=22)
        """
        proto, _, port = text.strip().partition(":")
        if proto not in ("icmp", "tcp", "udp"):
            raise ValueError(f"unknown protocol {proto!r} in {text!r}: use icmp, tcp:PORT or udp:PORT")
        if proto == "icmp":
            if port:
                raise ValueError(f"icmp takes no port: {text!r}")
            return cls("icmp")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{proto} needs a port in 1..65535: {text!r}")
        return cls(proto, int(port))

    def __str__(self) -> str:
        return self.protocol if self.port is None else f"{self.protocol}:{self.port}"


def parse_flows(text: str) -> list[Flow]:
    """A comma-separated list of flows.

    >>> [str(f) for f in parse_flows("icmp, tcp:22")]
    ['icmp', 'tcp:22']
    """
    return [Flow.parse(part) for part in text.split(",") if part.strip()]
