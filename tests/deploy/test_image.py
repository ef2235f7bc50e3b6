"""The built image (OZ_BRIDGE_TEST_IMAGE): the contract's defaults, nothing but the runtime, and
`demo` and `run` working in it as its own user, also on a read-only root filesystem."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from bridge.sim import Simulator, running_simulator
from tests.deploy.image import OpenImage, image_name, opened
from tests.deploy.tools import ROOT
from tests.e2e.harness import API_KEY, free_port, wait_until

UID = 10001
COMPILERS = ("gcc", "cc", "c++", "g++", "clang", "ld", "as", "make")


@pytest.fixture(scope="module")
def image() -> Iterator[OpenImage]:
    with opened(image_name()) as open_image:
        yield open_image


def site_packages(image: OpenImage) -> Path:
    (found,) = (image.rootfs / "opt/oz-bridge/lib").glob("python3*/site-packages")
    return found


def test_the_image_has_the_contracts_defaults(image: OpenImage) -> None:
    config = image.config
    assert config["Entrypoint"] == ["oz-bridge"] and config["Cmd"] == ["run"]
    assert re.fullmatch(r"[0-9]+:[0-9]+", image.user) and not image.user.startswith("0:")
    assert image.env["OZ_BRIDGE_CONFIG"] == "/etc/oz-bridge/bridge.yaml"
    assert image.env["OZ_BRIDGE_DATABASE_URL"] == "sqlite:////var/lib/oz-bridge/bridge.db"
    assert list(config["Volumes"]) == ["/var/lib/oz-bridge"]
    assert list(config["ExposedPorts"]) == ["8080/tcp"]
    test = config["Healthcheck"]["Test"]
    assert test[0] == "CMD" and test[1].endswith("/python") and "/healthz" in test[-1]


def test_the_labels_say_where_it_comes_from(image: OpenImage) -> None:
    labels = image.config["Labels"]
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"


def test_nothing_but_the_runtime_is_in_it(image: OpenImage) -> None:
    root = image.rootfs
    for tool in COMPILERS:
        assert not (root / "usr/bin" / tool).exists(), f"/usr/bin/{tool} in the image"
    packages = {p.name.split("-")[0].lower() for p in site_packages(image).iterdir()}
    assert {"pip", "setuptools", "wheel"}.isdisjoint(packages)
    assert "bridge" in packages and not (site_packages(image) / "tests").exists()
    assert not list((root / "opt/oz-bridge/bin").glob("pip*"))
    assert not (root / "root/.cache").exists() and not (root / "src").exists()
    assert not list((root / "var/cache/apt/archives").glob("*.deb"))
    assert not list((root / "var/lib/apt/lists").glob("*_Packages*"))
    # Nothing the build mounted was left behind as an empty mount point.
    assert not (root / "etc/pip.conf").exists() and not list((root / "mnt").iterdir())
    installed = (root / "var/lib/dpkg/status").read_text()
    for package in ("python3-venv", "python3-pip", "gcc", "libc6-dev", "build-essential"):
        assert f"\nPackage: {package}\n" not in installed, package


def test_demo_runs_as_the_images_user(image: OpenImage) -> None:
    assert image.run("id", "-u").stdout.strip() == str(UID)
    done = image.run("oz-bridge", "demo", "--speed", "4")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Done." in done.stdout and "notifications delivered" in done.stdout


async def run_read_only(argv: list[str], within: float = 120) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("a read-only root needs a mount namespace: run as root")


async def test_the_read_only_root_really_is(image: OpenImage) -> None:
    needs_root()
    probe = ["sh", "-c", "touch /var/lib/oz-bridge/ok && touch /opt/oz-bridge/no || exit 3"]
    code, out = await run_read_only(image.read_only(probe, writable={"/var/lib/oz-bridge": None}))
    assert code == 3 and "Read-only file system" in out, out
    code, out = await run_read_only(image.read_only(["touch", "/tmp/no"], writable={}))
    assert code != 0 and "Read-only file system" in out, out


async def test_demo_on_a_read_only_root_with_only_the_data_volume_writable(image: OpenImage) -> None:
    """`docker run --read-only IMAGE demo`: the volume is the only writable place, and /tmp is not."""
    needs_root()
    code, out = await run_read_only(
        image.read_only(["oz-bridge", "demo", "--speed", "4"], writable={"/var/lib/oz-bridge": None})
    )
    assert code == 0, out
    assert "database in /var/lib/oz-bridge/oz-bridge-demo-" in out and "Done." in out


async def test_demo_on_a_read_only_root_with_only_tmp_writable(image: OpenImage) -> None:
    """A pod with an emptyDir on /tmp and no volume: the demo keeps everything in /tmp."""
    needs_root()
    code, out = await run_read_only(image.read_only(["oz-bridge", "demo", "--speed", "4"], writable={"/tmp": None}))
    assert code == 0, out
    assert "database in /tmp/oz-bridge-demo-" in out and "Done." in out


@pytest.fixture
async def oz_url() -> AsyncIterator[str]:
    async with running_simulator(Simulator(api_key=API_KEY)) as url:
        yield url


async def test_run_on_a_read_only_root_serves_probes_passes_its_healthcheck_and_stops_cleanly(
    image: OpenImage, oz_url: str, tmp_path: Path
) -> None:
    needs_root()
    data, config = tmp_path / "data", tmp_path / "config"
    data.mkdir()
    config.mkdir()
    os.chown(data, UID, UID)
    settings = {
        "poll": {"interval": 0.5},
        "targets": {"out": {"type": "console"}},
        "routes": [{"name": "all", "events": ["*"], "to": ["out"]}],
    }
    (config / "bridge.yaml").write_text(yaml.safe_dump(settings))
    port = free_port()
    env = {"WARP_API_KEY": API_KEY, "OZ_API_BASE_URL": f"{oz_url}/api/v1", "OZ_BRIDGE_PORT": str(port)}
    writable: dict[str, Path | None] = {"/var/lib/oz-bridge": data, "/tmp": None}

    def in_image(command: list[str]) -> list[str]:
        return image.read_only(command, writable=writable, read_only_binds={"/etc/oz-bridge": config}, env=env)

    async def ready() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    entrypoint = image.config["Entrypoint"] + image.config["Cmd"]
    proc = await asyncio.create_subprocess_exec(
        *in_image(entrypoint), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        await wait_until(ready, within=60, what="/readyz 200 from the image")
        healthcheck = image.config["Healthcheck"]["Test"][1:]
        code, out = await run_read_only(in_image(healthcheck))
        assert code == 0, out
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert (data / "bridge.db").stat().st_uid == UID
        code, _ = await run_read_only(in_image(healthcheck))
        assert code != 0  # and it fails once nothing answers
    finally:
        if proc.returncode is None:
            proc.kill()
        output, _ = await proc.communicate()
    assert b"Traceback" not in output, output.decode(errors="replace")
