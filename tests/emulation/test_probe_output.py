"""A probe agent's output is read or refused: a verdict comes from packets, never from silence (no root)."""

import pytest

from labtwin.emulation.probes import ProbeAgentSilent, ProbeSpec, parse_agent_output

SPECS = [ProbeSpec("a", "b", "port:0", "10.0.0.3", "tcp", 22), ProbeSpec("a", "c", "port:0", "10.0.0.4", "icmp")]
ROW = '{"id": %d, "verdict": "blocked", "answer": "timeout", "latency_s": null}'


def test_a_full_answer_is_read():
    results = parse_agent_output(SPECS, '{"results": [%s, %s]}' % (ROW % 0, ROW % 1))
    assert [(r.spec.dst_ip, r.verdict) for r in results] == [("10.0.0.3", "blocked"), ("10.0.0.4", "blocked")]


@pytest.mark.parametrize(
    "text, what",
    [
        ("", "no output for 2 probe"),
        ("Traceback ...", "unreadable output"),
        ('{"results": [%s]}' % (ROW % 0), "no result for 1 of 2"),
    ],
    ids=["empty", "garbage", "short"],
)
def test_silence_garbage_or_a_short_answer_is_an_error_not_blocked(text, what):
    with pytest.raises(ProbeAgentSilent, match=what):
        parse_agent_output(SPECS, text)
