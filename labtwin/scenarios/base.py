"""What a scenario is: a name, a default topology, knobs, and its backends.

A scenario ties one design topic's model and emulation together. The model
and the emulation never import each other; this layer (above both) does.
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Optional, Protocol, TypeVar

from ..description import Cloud, load_cloud
from ..records import Run


class ScenarioError(ValueError):
    """A bad scenario name or knob: the message lists what is valid."""


class UnknownKnob(ScenarioError):
    """A knob no design of this kind has; the message lists the valid ones."""

    def __init__(self, owner: str, name: str, known: list[str]):
        super().__init__(f"{owner} has no knob {name!r}; knobs: {', '.join(known) or '(none)'}")
        self.name, self.known = name, known


class TopologyUnfit(ScenarioError):
    """A valid cloud that lacks what a scenario needs (a network node, a routed network ...).

    ``labtwin validate`` accepts such a file: it is a fine cloud, just not one
    this scenario can study. Raised by :meth:`Scenario.refuse_unfit` before any
    work, so neither backend starts (nothing is emulated, nothing to clean up);
    the message names the file and what is missing, on one line.
    """


@dataclass(frozen=True)
class Knob:
    """A design choice with a default. ``choices`` limits the values; ``kind`` parses them."""

    name: str
    default: Any
    help: str
    choices: Optional[tuple] = None
    kind: Callable[[str], Any] = str

    def parse(self, text: Any) -> Any:
        """The knob's value from a CLI string or a Python value; both go through ``kind``,
        so ``members=-5`` from Python is refused like ``--set members=-5``."""
        try:
            value = self.kind(text if isinstance(text, str) else str(text))
        except ValueError as exc:
            raise ScenarioError(f"knob {self.name}: {text!r} is not a valid {self.kind.__name__} ({exc})") from None
        if self.choices is not None and value not in self.choices:
            raise ScenarioError(f"knob {self.name}: {value!r} is not one of {', '.join(map(str, self.choices))}")
        return value


def boolean(text: str) -> bool:
    """Parse a knob value as a boolean (true/false, yes/no, 1/0, on/off)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("use true or false")


def bounded(kind: Callable[[str], Any], low: Any = None, high: Any = None, unit: str = "") -> Callable[[str], Any]:
    """A knob parser: *kind* of the text, between *low* and *high* (inclusive, either optional).

    >>> count = bounded(int, 1)
    >>> count("3"), count.__name__
    (3, 'int >= 1')
    >>> bounded(float, 0, 1)("1.5")
    Traceback (most recent call last):
    ...
    ValueError: out of range
    """
    if low is not None and high is not None:
        what = f"{kind.__name__} in {low}..{high}"
    else:
        what = f"{kind.__name__} >= {low}" if low is not None else f"{kind.__name__} <= {high}"
    what += f" {unit}" if unit else ""

    def parse(text: str):
        value = kind(text)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError("out of range")
        return value

    parse.__name__ = what
    return parse


D = TypeVar("D", bound="Design")

#: The Neutron releases the model knows (each scenario's ``era`` knob; sg-fanout's ``profile`` names them too):
#: the PTG's (Train, 2019) and today's (Neutron 29, 2026.2), each fact cited from that release's code.
ERAS = ("train-2019", "neutron-29")


class Design(dict):
    """A scenario's design: every knob, parsed and bounds-checked once (:meth:`of`), then frozen.

    Each scenario subclasses it in its spec with its :attr:`KNOBS` and one annotation per knob
    (``firewall: str``), so a design reads as typed attributes (``design.firewall``, checked by mypy).
    It stays a ``dict`` for what records it (``Run.design``); a changed design is a new one
    (``Design.of({**design, "members": 40})``).
    """

    #: The scenario's knobs: names, defaults, parsers with their bounds (the one place they are checked).
    KNOBS: ClassVar[tuple[Knob, ...]] = ()

    @classmethod
    def of(cls: type[D], design: Optional[Mapping[str, Any]] = None) -> D:
        """*design* as this type: itself when it already is one, else the knobs' defaults with *design*'s
        values applied, each parsed by its knob (a CLI string or a Python value alike); an unknown knob
        is an error naming the valid ones. The backends start with it, so a plain dict from a test or
        a notebook is checked exactly as ``--set`` is."""
        if isinstance(design, cls):
            return design
        known = {k.name: k for k in cls.KNOBS}
        values = {k.name: k.default for k in cls.KNOBS}
        for name, value in (design or {}).items():
            if name not in known:
                raise UnknownKnob(cls.__name__, name, list(known))
            values[name] = known[name].parse(value)
        return cls(cls.implied(values, set(design or ())))

    @classmethod
    def implied(cls, values: dict[str, Any], given: set[str]) -> dict[str, Any]:
        """*values* with what one knob implies for another (*given*: the knobs set, not defaulted); a
        contradiction between two set knobs is a :class:`ScenarioError` naming both. None by default."""
        return values

    @staticmethod
    def imply_each_other(
        values: dict[str, Any], given: set[str], a: tuple[str, Any], b: tuple[str, Any], why_a: str, why_b: str
    ) -> dict[str, Any]:
        """Two (knob, value) settings that imply each other: one set makes the other so; the one set with the
        other knob set to something else is a :class:`ScenarioError` (*why_a* when *a* holds, *why_b* when *b*
        does, each told the contradicting value as ``{value}``)."""
        for (knob, value), (other, implied), why in ((a, b, why_a), (b, a, why_b)):
            if values[knob] == value and values[other] != implied:
                if other in given:
                    raise ScenarioError(why.format(value=values[other]))
                return {**values, other: implied}
        return values

    @staticmethod
    def imply(values: dict[str, Any], given: set[str], knob: str, value: Any, why: str) -> dict[str, Any]:
        """*values* with *knob* set to *value* (one setting implies another, not the other way round); when
        the user set *knob* to something else, a :class:`ScenarioError` saying *why* and what was set."""
        if values[knob] == value:
            return values
        if knob in given:
            raise ScenarioError(f"{why}, not {knob}={values[knob]}")
        return {**values, knob: value}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no knob {name!r}") from None

    def _frozen(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"a {type(self).__name__} is frozen: make a new design ({type(self).__name__}.of) instead")

    __setitem__ = __delitem__ = update = pop = popitem = setdefault = clear = __setattr__ = _frozen

    def __reduce__(self) -> tuple:  # copy and pickle rebuild it whole (item by item would hit _frozen)
        return (type(self), (dict(self),))

    @classmethod
    def knob_names(cls) -> list[str]:
        return [
            name for klass in reversed(cls.__mro__) for name in getattr(klass, "__annotations__", {}) if name != "KNOBS"
        ]


@dataclass(frozen=True)
class Tolerance:
    """How close the model and the emulation must be on one summary metric."""

    metric: str
    relative: float = 0.0
    absolute: float = 0.0
    why: str = ""
    #: When set: agree iff both are positive, the model exceeds the emulation by at most this factor, and the
    #: emulation exceeds the model by at most ``ratio_slower`` (default: the same). With ratio x ratio_slower
    #: under 2, a model with every cost doubled or halved disagrees from any pair that agreed; a zero-cost
    #: model never agrees.
    ratio: float = 0.0
    ratio_slower: float = 0.0
    #: A wall-clock metric: compared only against a calibration of this machine (see labtwin.calibration).
    timing: bool = False

    def agrees(self, model: float, emulation: float) -> bool:
        if self.ratio:
            slower = self.ratio_slower or self.ratio
            return model > 0 and emulation > 0 and model / emulation <= self.ratio and emulation / model <= slower
        return abs(model - emulation) <= max(self.absolute, self.relative * abs(emulation))

    def describe(self) -> str:
        if self.ratio:
            return f"emulation/model in [1/{self.ratio:g}, {self.ratio_slower or self.ratio:g}]"
        return f"±max({self.absolute}, {self.relative:.0%})"


@dataclass(frozen=True)
class TwinTiming:
    """How the model side of a twin is timed: the knobs that make it describe this machine, or why it is not."""

    model_knobs: dict = field(default_factory=dict)
    #: Empty when timing is compared; else the reason, shown on each wall-clock row of the twin report.
    not_compared: str = ""


class Simulate(Protocol):
    """A scenario's model backend: a ``Run`` with backend ``model``.

    *cloud* is the loaded topology, or None: then the scenario's default topology, or (for a scenario
    with ``needs_topology=False``) a cloud generated from the knobs. *design* holds every knob, parsed
    and bounds-checked by the Scenario (:meth:`Scenario.design`); *topology* names the file, for the record.
    """

    def __call__(self, cloud: Optional[Cloud], design: dict, seed: int, topology: str = "") -> Run: ...


class Emulate(Protocol):
    """A scenario's emulation backend: like :class:`Simulate`, a ``Run`` with backend ``emulation``, its
    records (and captures) also saved under *out_dir* when given."""

    def __call__(
        self, cloud: Optional[Cloud], design: dict, seed: int, topology: str = "", *, out_dir: Any = None
    ) -> Run: ...


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    default_topology: Optional[str]
    simulate: Simulate
    emulate: Optional[Emulate] = None
    tolerances: tuple[Tolerance, ...] = ()
    #: Probe ``detail`` keys the twin requires equal in both backends (beyond the verdict).
    probe_details: tuple[str, ...] = ()
    needs_topology: bool = True
    notebook: Optional[str] = None
    #: ``(out, seed, progress, **knobs) -> calibration``: fits the scenario's costs on this machine
    #: (``labtwin calibrate``); None where a scenario has nothing to calibrate.
    calibrate: Optional[Callable[..., Any]] = None
    #: ``(model run) -> reason or None``: a model run that cannot be compared with an emulation of the same
    #: knobs (a case one backend cannot do, e.g. sg-fanout's overlapping joins), refused rather than
    #: reported as a disagreement between different mechanics.
    twin_refuses: Optional[Callable[[Any], Optional[str]]] = None
    #: ``(user knobs, auto_calibrate, progress) -> TwinTiming`` for scenarios whose twin compares wall-clock time.
    twin_timing: Optional[Callable[..., TwinTiming]] = None
    #: What a cloud lacks for this scenario under a design: ``(cloud, design) -> [what is missing, in words]``.
    missing: Optional[Callable[[Cloud, Any], list[str]]] = None
    #: The typed, frozen design this scenario's knobs make (one annotation per knob).
    design_type: type[Design] = Design
    #: ``(emulation run, user knobs) -> knobs``: what the real system drew at random and no topology can say
    #: (which of two equally loaded OVN gateway chassis Neutron's scheduler made active): the twin runs the
    #: model again with these knobs, so the comparison holds the draw fixed. Empty: nothing was drawn.
    drawn: Optional[Callable[[Any, Mapping[str, Any]], dict[str, Any]]] = None

    @property
    def knobs(self) -> tuple[Knob, ...]:
        """The design's knobs (:attr:`Design.KNOBS` of :attr:`design_type`, defined in the scenario's spec)."""
        return self.design_type.KNOBS

    def design(self, overrides: Optional[Mapping[str, Any]] = None) -> Design:
        """The knobs' defaults with *overrides* applied, each parsed by its knob, as this scenario's
        :class:`Design`; unknown knobs are an error."""
        try:
            return self.design_type.of(dict(overrides or {}))
        except UnknownKnob as exc:
            raise UnknownKnob(f"scenario {self.name}", exc.name, exc.known) from None

    def refuse_unfit(self, cloud: Optional[Cloud], design: dict, path: str) -> None:
        """Raise :class:`TopologyUnfit` when *cloud* (loaded from *path*) lacks what this scenario needs.

        A generated cloud (``None``) is built to fit. Checked before either backend
        runs, so a model never half-runs and an emulation never creates anything.
        """
        if cloud is None:
            return
        from ..description.checks import control_mismatch

        mismatch = control_mismatch(cloud, design.get("control"))
        if mismatch:
            raise TopologyUnfit(f"{path}: scenario {self.name} cannot run on cloud {cloud.name!r}: {mismatch}")
        if self.missing is None:
            return
        lacks = self.missing(cloud, design)
        if lacks:
            raise TopologyUnfit(
                f"{path}: scenario {self.name} cannot run on cloud {cloud.name!r}: it needs " + "; and ".join(lacks)
            )

    def cloud(self, topology: Optional[str] = None) -> tuple[Optional[Cloud], str]:
        """Load *topology* (or this scenario's default) and say which file it was."""
        path = topology or (str(topologies_dir() / self.default_topology) if self.default_topology else None)
        if path is None:
            return None, ""
        return load_cloud(path), path


def lazy(target: str) -> Callable[..., Any]:
    """The function *target* (``package.module:function``), imported when first called.

    A scenario names its backends this way, so ``labtwin --help``, ``validate`` or a model run import neither
    an emulation nor what only another scenario uses (pandas, the OVN and Neutron glue): the command line
    starts in a fraction of a second.
    """
    module, _, attr = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), attr)(*args, **kwargs)

    call.__name__ = call.__qualname__ = attr
    call.__module__ = module
    call.__doc__ = f"``{target}``, imported when first called."
    return call


def on_default_topology(default_topology: str, backend: Callable[..., Run]) -> Callable[..., Run]:
    """*backend* (which needs a cloud), given the topology file *default_topology* (in :func:`topologies_dir`)
    when it gets none: the :class:`Simulate` / :class:`Emulate` convention for a scenario that studies a
    topology file."""

    @functools.wraps(backend)
    def run(cloud: Optional[Cloud], design: dict, seed: int, topology: str = "", **kwargs: Any) -> Run:
        if cloud is None:
            topology = topology or str(topologies_dir() / default_topology)
            cloud = load_cloud(topology)
        return backend(cloud, design, seed, topology, **kwargs)

    return run


def topologies_dir() -> Path:
    """Where default topologies live: $LABTWIN_TOPOLOGIES, else the package's ``topologies`` (in a checkout a
    link to the repository's ``topologies/``; in a wheel a copy of it, shipped as package data)."""
    env = os.environ.get("LABTWIN_TOPOLOGIES")
    if env:
        return Path(env)
    return (Path(__file__).resolve().parents[1] / "topologies").resolve()  # the repository's, in a checkout
