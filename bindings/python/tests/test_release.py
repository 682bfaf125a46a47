"""The release plan holds together: the README's "Platforms" table, the release workflow's build
matrices (.github/workflows/release.yml), the npm platform packages (bindings/node/npm/) and
napi's target list name the same platforms, and what the table says is built and tested here is
what scripts/cross.sh, run by the test command, builds and runs. Reads the files; builds nothing
(scripts/cross.sh does, after this suite)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
NODE = ROOT / "bindings" / "node"
HERE = ("built and run here", "built here, run under qemu", "built and checked here, not run")


def workflow() -> Dict[Any, Any]:
    data = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def platforms() -> List[Dict[str, str]]:
    """The rows of the README's table under "## Platforms", by column name."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Platforms\n", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip().strip("`") for cell in line.strip("|").split("|")]
        rows.append(dict(zip(header, cells)))
    return rows


def npm_platform(target: str) -> str:
    """napi-rs's name for a Rust target: x86_64-unknown-linux-gnu -> linux-x64-gnu."""
    arch, _vendor, system, *abi = target.split("-")
    cpu = {"x86_64": "x64", "aarch64": "arm64"}[arch]
    if system == "darwin":
        return f"darwin-{cpu}"
    os_name = {"linux": "linux", "windows": "win32"}[system]
    return f"{os_name}-{cpu}-{abi[0]}"


def matrix(job: str, key: str) -> List[Dict[str, Any]]:
    entries = workflow()["jobs"][job]["strategy"]["matrix"][key]
    assert isinstance(entries, list)
    return entries


def test_the_readme_table_lists_seven_platforms_and_how_far_each_goes() -> None:
    rows = platforms()
    assert len(rows) == 7, rows
    here = [row["Rust target"] for row in rows if row["here"] in HERE]
    assert here == [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
    ]
    for row in rows:
        assert row["here"] in HERE + ("built by the release workflow only",), row
        if "apple" in row["Rust target"] or "windows" in row["Rust target"]:
            assert row["here"] == "built by the release workflow only", row


def test_every_platform_has_a_wheel_job_and_every_wheel_job_a_platform() -> None:
    targets = [entry["target"] for entry in matrix("wheels", "platform")]
    assert sorted(targets) == sorted(row["Rust target"] for row in platforms())


def test_every_platform_has_an_addon_job_and_every_addon_job_a_platform() -> None:
    targets = [entry["target"] for entry in matrix("addons", "settings")]
    assert sorted(targets) == sorted(row["Rust target"] for row in platforms())


def test_the_wheel_tags_are_the_ones_the_readme_names() -> None:
    jobs = {entry["target"]: entry for entry in matrix("wheels", "platform")}
    for row in platforms():
        job, tag = jobs[row["Rust target"]], row["Python wheel"]
        if tag.startswith("manylinux_2_17_"):
            assert str(job["manylinux"]) == "2014" and job.get("zig") is True, job
        elif tag.startswith("musllinux_1_2_"):
            assert job["manylinux"] == "musllinux_1_2" and job.get("zig") is True, job
        else:
            assert "manylinux" not in job, job
        if "linux" in row["Rust target"]:
            assert job["runner"].startswith("ubuntu"), job
        if "apple" in row["Rust target"]:
            assert job["runner"].startswith("macos"), job
            assert tag.startswith("macosx_") and tag.endswith(row["Rust target"].split("-")[0].replace("aarch64", "arm64"))
        if "windows" in row["Rust target"]:
            assert job["runner"].startswith("windows") and tag == "win_amd64", job


def test_the_wheel_builds_are_stripped_locked_abi3_builds() -> None:
    steps = workflow()["jobs"]["wheels"]["steps"]
    [maturin] = [s for s in steps if str(s.get("uses", "")).startswith("PyO3/maturin-action@")]
    assert maturin["with"]["working-directory"] == "bindings/python"
    args = maturin["with"]["args"]
    assert "--profile dist" in args and "--locked" in args, args
    assert "--zig" in args, "the Linux wheels are cross-built with zig"
    # abi3: one wheel per platform serves every CPython from 3.10.
    cargo = (ROOT / "bindings" / "python" / "Cargo.toml").read_text(encoding="utf-8")
    assert '"abi3-py310"' in cargo


def test_the_addons_for_glibc_target_glibc_2_17_with_zig() -> None:
    for entry in matrix("addons", "settings"):
        build = entry["build"]
        assert f"--target {entry['target']}" in build, entry
        if entry["target"].endswith("-linux-gnu"):
            assert f"--target {entry['target']}.2.17 -x" in build, entry
        elif "linux" in entry["target"]:
            assert " -x" in build, entry
    run = [s["run"] for s in workflow()["jobs"]["addons"]["steps"] if "napi build" in s.get("run", "")]
    assert len(run) == 1 and "--profile dist" in run[0] and run[0].endswith("-- --locked"), run


def test_the_npm_packages_are_napi_targets_in_the_napi_rs_layout() -> None:
    package = json.loads((NODE / "package.json").read_text(encoding="utf-8"))
    targets = package["napi"]["targets"]
    assert sorted(targets) == sorted(row["Rust target"] for row in platforms())
    dirs = sorted(p.name for p in (NODE / "npm").iterdir() if p.is_dir())
    assert dirs == sorted(npm_platform(t) for t in targets)
    for row in platforms():
        assert row["npm package"] == f"lendkit-{npm_platform(row['Rust target'])}", row


@pytest.mark.parametrize("target", [row["Rust target"] for row in platforms()])
def test_each_platform_package_says_where_it_runs_and_ships_the_licences(target: str) -> None:
    main = json.loads((NODE / "package.json").read_text(encoding="utf-8"))
    platform = npm_platform(target)
    pkg = json.loads((NODE / "npm" / platform / "package.json").read_text(encoding="utf-8"))
    assert pkg["name"] == f"lendkit-{platform}"
    assert pkg["version"] == main["version"]
    assert pkg["license"] == main["license"] == "MIT OR Apache-2.0"
    assert pkg["main"] == f"lendkit.{platform}.node"
    assert pkg["files"] == [f"lendkit.{platform}.node", "LICENSE-MIT", "LICENSE-APACHE"]
    assert pkg["os"] == [platform.split("-")[0]]
    assert pkg["cpu"] == [platform.split("-")[1]]
    if target.endswith("-linux-gnu"):
        assert pkg["libc"] == ["glibc"]
    elif target.endswith("-linux-musl"):
        assert pkg["libc"] == ["musl"]
    else:
        assert "libc" not in pkg


def test_optional_dependencies_are_written_at_publish_time_not_committed() -> None:
    """Committed, they would make `npm ci` fetch packages that are not on the registry yet."""
    package = json.loads((NODE / "package.json").read_text(encoding="utf-8"))
    assert "optionalDependencies" not in package
    assert package["scripts"]["prepublishOnly"] == "napi pre-publish -t npm"
    lock = json.loads((NODE / "package-lock.json").read_text(encoding="utf-8"))
    assert not [name for name in lock["packages"] if name.startswith("node_modules/lendkit-")]


def test_the_workflow_publishes_only_what_every_build_job_made() -> None:
    data = workflow()
    # PyYAML reads the key `on` as True.
    triggers = data["on"] if "on" in data else data[True]
    assert set(triggers) == {"push", "workflow_dispatch"}
    assert triggers["push"] == {"tags": ["v*"]}
    publish = data["jobs"]["publish"]
    assert sorted(publish["needs"]) == ["addons", "sdist", "wheels"]
    assert publish["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert data["permissions"] == {"contents": "read"}
    assert data["jobs"]["sdist"]["steps"][1]["with"]["command"] == "sdist"


def test_the_test_command_builds_and_runs_what_the_table_says_is_tested_here() -> None:
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    commands = [line.strip() for line in script.splitlines() if not line.strip().startswith("#")]
    assert "bash scripts/cross.sh" in commands
    # After the Python and Node suites.
    assert commands.index("bash scripts/cross.sh") > commands.index("bash bindings/node/test.sh")
    cross = (ROOT / "scripts" / "cross.sh").read_text(encoding="utf-8")
    for row in platforms():
        arch = row["Rust target"].split("-")[0]
        if row["here"] in HERE:
            targets = "musl_targets" if row["Rust target"].endswith("-musl") else "wheel_targets"
            assert arch in re.findall(targets + r"(?:\+)?=\((\w+)\)", cross), row
            assert row["npm package"].removeprefix("lendkit-") in cross, row
    assert "qemu-aarch64" in cross and "--compatibility manylinux2014" in cross
    assert "--compatibility musllinux_1_2" in cross
    assert "auditwheel show" in cross
