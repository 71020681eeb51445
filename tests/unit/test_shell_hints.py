"""What the `govfleet up` banner tells a second shell: the venv on PATH, and the variables the
`temporal` CLI and the `govfleet` commands need when `up` runs on other ports or state."""

from __future__ import annotations

from pathlib import Path

from govfleet.local_fleet import shell_hints


def _venv(tmp_path: Path) -> Path:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "activate").write_text("")
    return bin_dir


def test_default_ports_need_only_the_venv(tmp_path):
    hints = shell_hints(
        temporal_address="127.0.0.1:7233",
        embedded_temporal=True,
        data_dir=tmp_path / ".govfleet",
        service_port=8926,
        venv_bin=_venv(tmp_path),
        cwd=tmp_path,
    )
    assert hints == [". .venv/bin/activate", "temporal workflow list", "govfleet status"]


def test_other_ports_and_data_dir_are_exported(tmp_path):
    hints = shell_hints(
        temporal_address="127.0.0.1:17233",
        embedded_temporal=True,
        data_dir=tmp_path / "elsewhere",
        service_port=18926,
        venv_bin=_venv(tmp_path),
        cwd=tmp_path,
    )
    assert hints[:4] == [
        ". .venv/bin/activate",
        "export TEMPORAL_ADDRESS=127.0.0.1:17233",
        f"export GOVFLEET_DATA_DIR={tmp_path / 'elsewhere'}",
        "export SERVICE_PORT=18926",
    ]
    assert "temporal workflow list" in hints


def test_external_temporal_is_already_in_the_environment(tmp_path):
    hints = shell_hints(
        temporal_address="temporal.example.internal:7233",
        embedded_temporal=False,
        data_dir=tmp_path / ".govfleet",
        service_port=8926,
        venv_bin=None,
        cwd=tmp_path,
    )
    assert not any(h.startswith("export TEMPORAL_ADDRESS") or h.startswith(". ") for h in hints)
