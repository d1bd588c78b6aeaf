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
