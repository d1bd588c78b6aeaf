"""Malformed topology files always end in exit 2 with located messages, never a traceback."""

import re

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labtwin.cli import main

LOCATED = re.compile(r"^(?P<path>.+\.yaml):(?P<line>\d+): (?P<field>\S+): (?P<msg>.+)$")

junk = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "-1",
            "99999",
            "null",
            "[]",
            "{}",
            "[1, 2]",
            "'a;b'",
            "&a x",
            "*a",
            "!!python/object:os.system",
            "10.0.0.0/33",
            "fe80::/10",
            "true",
            "1e9",
            "{name: x}",
            ":",
            "- -",
            "\t",
            "'",
            '"',
            "%TAG",
            "...",
            "---",
        ]
    ),
)


def mutate(text: str, data) -> str:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "replace-value", "insert", "truncate", "duplicate"]))
        if action == "delete":
            del lines[i]
        elif action == "replace-value" and ":" in lines[i]:
            head = lines[i].rsplit(":", 1)[0]
            lines[i] = f"{head}: {data.draw(junk)}"
        elif action == "insert":
            lines.insert(i, data.draw(junk))
        elif action == "truncate":
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
        else:
            lines.insert(i, lines[i])
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_minimal_never_crashes(tmp_path, minimal_text, data):
    path = tmp_path / "mutant.yaml"
    path.write_text(mutate(minimal_text, data))
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output + result.stderr
    assert result.exit_code in (0, 2), result.output + result.stderr
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert lines, "exit 2 must say what is wrong"
        for line in lines:
            match = LOCATED.match(line)
            assert match, line
            assert match["path"] == str(path)
    else:
        assert result.stdout.startswith(f"{path}: ok")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(tmp_path, raw):
    path = tmp_path / "noise.yaml"
    path.write_bytes(raw)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2 or result.stdout.startswith(f"{path}: ok") or raw.strip() == b""
    assert result.exit_code in (0, 2)
    for line in result.stderr.strip().splitlines():
        assert LOCATED.match(line), line
