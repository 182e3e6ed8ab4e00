"""The project's dbt resource: one process per dbt invocation, nothing else spawned first."""

import subprocess
import sys

from orchestration.defs.transform.project import (
    DBT_EXECUTABLE,
    CdpDbtCliResource,
    dbt_resource,
)

_spawned: list[list[str]] | None = None


def _record_spawns(event: str, args: tuple) -> None:
    if event == "subprocess.Popen" and _spawned is not None:
        _spawned.append([str(a) for a in args[1]])


sys.addaudithook(_record_spawns)


def test_version_is_the_one_the_dbt_executable_reports():
    resource = dbt_resource()
    assert isinstance(resource, CdpDbtCliResource)
    reported = subprocess.run(
        [DBT_EXECUTABLE, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert f"installed: {resource._cli_version}" in reported


def test_an_invocation_spawns_only_dbt_itself_and_loads_no_adapter(tmp_path):
    global _spawned
    _spawned = []
    try:
        invocation = dbt_resource().cli(["parse", "--quiet"], target_path=tmp_path / "target")
        invocation.wait()
    finally:
        spawned, _spawned = _spawned, None
    assert invocation.is_successful()
    assert (tmp_path / "target" / "manifest.json").exists()
    # dagster-dbt would otherwise run `dbt --version` first and build an adapter in-process.
    assert [command[1:3] for command in spawned] == [["parse", "--quiet"]], spawned
    assert invocation.adapter is None
