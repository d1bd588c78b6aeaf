"""The machine snapshot sees what a run could leave behind, including Neutron's own files in /tmp."""

import tempfile

import pytest

from labtwin.emulation import snapshot


@pytest.mark.emulation
def test_a_file_neutron_leaves_in_the_temporary_directory_changes_the_snapshot(tmp_path, monkeypatch):
    """ML2/OVN's WSGI helpers write neutron_start_time<ppid> into the temporary directory; the run's server
    writes it into its own directory (ovn_server._private_temporary_files), and the snapshot would catch it
    anywhere else."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = snapshot.machine_state()
    (tmp_path / "neutron_start_time4242").write_text("1")
    (tmp_path / "unrelated").write_text("1")
    changed = snapshot.differences(before, snapshot.machine_state())
    assert set(changed) == {"neutron_temp_files"} and changed["neutron_temp_files"][1] == ["neutron_start_time4242"]
