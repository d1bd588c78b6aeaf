"""Each scenario's design is a typed, frozen object, made once by its Scenario from its knobs."""

import copy
import pickle
import typing

import pytest

from labtwin import api
from labtwin.scenarios.base import Design

TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool}


@pytest.mark.parametrize("scenario", [s.name for s in api.scenarios()])
def test_the_design_type_has_one_typed_field_per_knob(scenario):
    spec = api.get_scenario(scenario)
    assert spec.design_type is not Design, f"{scenario} has no typed design"
    assert spec.design_type.knob_names() == [k.name for k in spec.knobs]
    design = spec.design()
    hints = typing.get_type_hints(spec.design_type)
    for knob in spec.knobs:
        assert isinstance(getattr(design, knob.name), TYPES[hints[knob.name].__name__]), knob.name


def test_a_design_is_frozen_and_survives_copies():
    design = api.get_scenario("sg-fanout").design({"members": "40"})
    assert design.members == 40 and design["members"] == 40
    for change in (lambda d: d.__setitem__("members", 1), lambda d: d.update(members=1), lambda d: d.pop("members")):
        with pytest.raises(TypeError, match="frozen"):
            change(design)
    with pytest.raises(TypeError, match="frozen"):
        design.members = 1
    assert copy.deepcopy(design) == pickle.loads(pickle.dumps(design)) == design
    assert type(copy.copy(design)) is type(design)
    with pytest.raises(AttributeError, match="no knob 'member'"):
        design.member


def test_the_era_knob_says_which_neutron_and_what_it_implies():
    """Two eras (issue 12): train-2019, the PTG's Neutron, and neutron-29, today's. In multisegment Neutron 29
    means the IPAM rule it implemented (many) and no Linux bridge agent; real OVN runs Neutron 29; in dvr the
    Linux bridge agent is Train's. A contradiction set by the user is refused, naming both knobs."""
    from labtwin.scenarios import ScenarioError
    from labtwin.scenarios.dvr.knobs import DvrDesign
    from labtwin.scenarios.multisegment.spec import MultisegmentDesign

    train = MultisegmentDesign.of({})
    assert (train.era, train.segments_per_host, train.agent) == ("train-2019", "one", "linuxbridge")
    assert MultisegmentDesign.of({"segments_per_host": "many"}).era == "train-2019"  # the PTG's proposal, in Train
    today = MultisegmentDesign.of({"era": "neutron-29"})
    assert (today.segments_per_host, today.agent) == ("many", "ovs")
    assert MultisegmentDesign.of({"era": "neutron-29", "agent": "ovn"}).control == "ovn"
    assert MultisegmentDesign.of({"control": "ovn"}).era == "neutron-29"
    assert DvrDesign.of({}).era == "neutron-29" and DvrDesign.of({"agent": "linuxbridge"}).era == "train-2019"
    assert DvrDesign.of({"router": "ovn"}).era == "neutron-29"
    refused = [
        (MultisegmentDesign, {"era": "neutron-29", "segments_per_host": "one"}, "segments_per_host=one"),
        (MultisegmentDesign, {"era": "neutron-29", "agent": "linuxbridge"}, "not agent=linuxbridge"),
        (MultisegmentDesign, {"control": "ovn", "era": "train-2019"}, "control=ovn runs Neutron 29"),
        (DvrDesign, {"agent": "linuxbridge", "era": "neutron-29"}, "removed it in 2025.1, not era=neutron-29"),
        (DvrDesign, {"control": "ovn", "era": "train-2019"}, "not era=train-2019"),
    ]
    for design, knobs, says in refused:
        with pytest.raises(ScenarioError, match=says):
            design.of(knobs)
