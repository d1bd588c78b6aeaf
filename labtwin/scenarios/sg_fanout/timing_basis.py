"""The twin's timing basis for sg-fanout: which calibration of this machine times the model, or why none does.

A profile the user names is theirs, not this machine's; labtwin's agent is timed against this machine's
calibration of labtwin's agent (made once, automatically, when missing); Neutron's agent
(``control=neutron``) only against a calibration of Neutron's agent, never made automatically. The
fitting itself is :mod:`.calibrate`.
"""

from __future__ import annotations

from labtwin import calibration
from labtwin.emulation.machine import fingerprint, machine_key
from labtwin.emulation.programs import MissingProgram

from ..base import TwinTiming
from .calibrate import (
    FAMILIES,
    MEASURED_PROFILE,
    SCENARIO_NAME,
    calibrate,
    calibration_name,
    families_in,
    family_of,
)

#: What an automatic calibration runs (the first twin on a machine): one family, fewer repeats than a full
#: `labtwin calibrate` so it takes about a minute; a full calibration replaces it.
AUTO = {"members": "5,10,20,40", "hosts": "2", "joins": "1", "repeats": "2", "check": ""}


def twin_timing(knobs: dict, auto_calibrate: bool = True, progress=None) -> TwinTiming:
    """The model knobs that time the twin's model side on this machine, or why timing is not compared.

    A profile the user sets is theirs to study, not this machine's: timing is then not compared. Otherwise
    the model runs with this machine's calibration from the cache, made first (once, with *progress*)
    when it is missing or lacks the firewall's family and *auto_calibrate* allows.
    """
    if "profile" in knobs:
        return TwinTiming({}, f"the model ran with profile {knobs['profile']}, not a calibration of this machine")
    example = {"profile": str(MEASURED_PROFILE)}  # counts need a profile whose joins do not overlap; timing aside
    if firewall_of(knobs) == "ovn" or knobs.get("control") == "ovn":
        return _calibrated_only("ovn", example)
    if knobs.get("control") == "neutron":
        return _neutron_timing(firewall_of(knobs), example)
    firewall = firewall_of(knobs)
    try:
        facts = fingerprint()
    except (MissingProgram, RuntimeError) as exc:  # no OVS here: nothing to calibrate against
        return TwinTiming(example, f"this machine cannot be fingerprinted ({exc})")
    path = calibration.find(SCENARIO_NAME, facts, machine_key(facts))
    if path is None or family_of(firewall) not in families_in(calibration.Calibration.from_file(path)):
        if not auto_calibrate:
            return TwinTiming(example, "no calibration for this machine (run `labtwin calibrate sg-fanout`)")
        family = FAMILIES[family_of(firewall)][0]
        calibrate(firewall=",".join(family), progress=progress, **AUTO)
        path = calibration.path_for(SCENARIO_NAME, machine_key(facts))
    return TwinTiming({"profile": str(path)})


def firewall_of(knobs: dict) -> str:
    return str(knobs.get("firewall", "iptables"))


def _calibrated_only(control: str, example: dict) -> TwinTiming:
    """ML2/OVN is timed only against a calibration of this machine's OVN (`labtwin calibrate sg-fanout --set
    control=ovn`), never made automatically (each run starts Neutron's server and a chassis per host)."""
    try:
        facts = fingerprint()
    except (MissingProgram, RuntimeError) as exc:
        return TwinTiming(example, f"this machine cannot be fingerprinted ({exc})")
    path = calibration.find(calibration_name(control), facts, machine_key(facts))
    if path is None:
        return TwinTiming(
            example,
            f"control={control}: no calibration of it on this machine (`labtwin calibrate sg-fanout --set "
            f"control={control}`)",
        )
    return TwinTiming({"profile": str(path)})


def _neutron_timing(firewall: str, example: dict) -> TwinTiming:
    """Neutron's agent is timed only against a calibration of Neutron's agent on this machine, never made
    automatically (each of its runs starts Neutron once per host): `labtwin calibrate sg-fanout --set
    control=neutron` makes it. labtwin's agent's calibration is not its clock: Neutron regenerates every
    filtered port's chains in Python and applies a diff, where labtwin's agent runs shell commands."""
    try:
        facts = fingerprint()
    except (MissingProgram, RuntimeError) as exc:
        return TwinTiming(example, f"this machine cannot be fingerprinted ({exc})")
    path = calibration.find(calibration_name("neutron"), facts, machine_key(facts))
    if path is None or family_of(firewall) not in families_in(calibration.Calibration.from_file(path)):
        return TwinTiming(
            example,
            "control=neutron: no calibration of Neutron's agent on this machine "
            "(`labtwin calibrate sg-fanout --set control=neutron --set firewall=iptables,ipset,ovs`)",
        )
    return TwinTiming({"profile": str(path)})
