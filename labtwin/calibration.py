"""Calibrations that carry their machine, kept in the user's cache directory.

A calibration is what ``labtwin calibrate SCENARIO`` fitted from emulation
runs on one machine: the cost parameters, the points they were fitted on
(with the spread of their repeats), the machine's fingerprint
(:func:`labtwin.emulation.machine.fingerprint`) and the date. It is stored as
``$XDG_CACHE_HOME/labtwin/calibrations/<scenario>/<machine key>.json``
(``~/.cache`` without ``XDG_CACHE_HOME``), so a twin on this machine finds
the calibration of this machine and never one that travelled with the repository.

The file is also a cost profile: its ``profile`` part is what the model
reads (``--set profile=PATH`` works with it).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

#: How much of a change in the machine's pace (a fixed probe: a program started in a namespace, a round
#: trip to ovs-vswitchd) shows in the emulated apply: times scale by (pace now / pace then) ** exponent.
#: A calibration measures the exponent per strategy (its points again with one core kept busy); this is
#: the fallback where it could not. Measured here: the probe slowed 1.5-1.75x under a busy core while the
#: fastest of 3 timed iptables joins slowed 1.1-1.35x, hence 0.5.
PACE_EXPONENT = 0.5


def pace_scale(now: float | None, then: float | None, exponent: float | None = None) -> float:
    """The factor by which times measured at pace *now* exceed those at pace *then* (1 when either is unknown).

    >>> round(pace_scale(0.004, 0.001), 3), round(pace_scale(0.004, 0.001, 1.0), 3)
    (2.0, 4.0)
    """
    if not now or not then:
        return 1.0
    return (now / then) ** (PACE_EXPONENT if exponent is None else exponent)


@dataclass(frozen=True)
class Calibration:
    """One scenario's fitted costs on one machine."""

    scenario: str
    fingerprint: dict[str, str]
    profile: dict[str, Any]
    date: str = ""
    fit: dict[str, Any] = field(default_factory=dict)
    #: How it was measured (method version, sizes, repeats) and the machine's pace then: what a twin checks.
    method: dict[str, Any] = field(default_factory=dict)
    points: list[dict[str, Any]] = field(default_factory=list)
    check: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> "Calibration":
        try:
            data = json.loads(Path(path).read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise CalibrationError(f"{path}: not a labtwin calibration ({exc})") from None


class CalibrationError(ValueError):
    """A calibration file that cannot be read."""


def cache_dir() -> Path:
    """Where calibrations of this machine live (XDG base directory spec)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labtwin" / "calibrations"


def path_for(scenario: str, machine_key: str) -> Path:
    return cache_dir() / scenario / f"{machine_key}.json"


def find(scenario: str, facts: dict[str, str], machine_key: str) -> Optional[Path]:
    """The calibration of *scenario* for the machine with fingerprint *facts*, or None.

    A file under this machine's key whose recorded fingerprint differs (edited
    by hand, or a key collision) is not used.
    """
    path = path_for(scenario, machine_key)
    if not path.is_file():
        return None
    return path if Calibration.from_file(path).fingerprint == facts else None


def save(calibration: Calibration, path: Path) -> Path:
    """Write *calibration* (dated now if it has no date) to *path*; return the path."""
    if not calibration.date:
        calibration = Calibration(
            **{**asdict(calibration), "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(calibration.to_json())
    tmp.replace(path)  # a reader never sees half a file
    return path
