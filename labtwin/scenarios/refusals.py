"""Emulation refusals: what an emulation cannot build is refused before it creates anything.

An emulation builds less than its model studies (no vxlan segments, no OVN, no router without a
host to put it on ...). Each limit is either checked up front (``missing``: each scenario's own
check, in its folder, like :meth:`~labtwin.scenarios.base.Scenario.refuse_unfit` for the model) or
found while the emulation plans -- plans are pure data, made before the realisation creates
anything -- and raised as a ``PlanError`` (the engine's, which a scenario's own refusals
subclass). Either way the user gets one line naming the file and what it lacks
(:class:`TopologyUnfit`, exit 2), not a traceback.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

from ..description import Cloud
from ..records import Run
from .base import Emulate, TopologyUnfit


def refusing_emulation(
    name: str, emulate: Callable[..., Run], missing: Optional[Callable[[Cloud, Any], list[str]]] = None
) -> Emulate:
    """*emulate*, refusing up front what *missing* names and turning plan-time refusals into :class:`TopologyUnfit`."""

    @functools.wraps(emulate)
    def guarded(cloud: Optional[Cloud], design: dict, seed: int, topology: str = "", **kwargs: Any) -> Run:
        where = topology or "the generated cloud"
        lacks = missing(cloud, design) if missing is not None and cloud is not None else []
        if cloud is not None and lacks:
            raise TopologyUnfit(
                f"{where}: the {name} emulation cannot build cloud {cloud.name!r}: it needs " + "; and ".join(lacks)
            )
        from ..emulation.plan import PlanError  # the emulation engine, imported when an emulation runs

        try:
            return emulate(cloud, design, seed, topology, **kwargs)
        except PlanError as exc:
            raise TopologyUnfit(f"{where}: the {name} emulation cannot build this: {exc}") from None

    return guarded
