"""A built oz-bridge image, opened with buildah: its config, its files, and commands run in it.

The image is named by ``OZ_BRIDGE_TEST_IMAGE`` (``scripts/build-image.sh`` prints the name); without it
the image tests skip. ``buildah run`` cannot make the root filesystem read-only, so ``read_only``
runs a command the way ``docker run --read-only`` would: the image's files bind-mounted read-only
in a private mount namespace, only the given places writable, chrooted, as the image's user, with
the image's environment and working directory.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

STORAGE_DRIVER = os.environ.get("BUILDAH_STORAGE_DRIVER", "vfs")


def image_name() -> str:
    name = os.environ.get("OZ_BRIDGE_TEST_IMAGE")
    if not name:
        pytest.skip("no image to test: OZ_BRIDGE_TEST_IMAGE=$(scripts/build-image.sh | tail -n1) pytest tests/deploy")
    if shutil.which("buildah") is None:
        pytest.skip("the image tests open the image with buildah (apt-get install buildah)")
    return name


def buildah(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["buildah", "--storage-driver", STORAGE_DRIVER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"buildah {' '.join(args)}: {done.stderr}"
    return done.stdout


@dataclass
class OpenImage:
    name: str
    container: str
    rootfs: Path
    config: dict[str, Any]

    @property
    def env(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for item in self.config["Env"])
        return {key: value for key, value in pairs}

    @property
    def user(self) -> str:
        user: str = self.config["User"]
        return user

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``buildah run``: the image's own user, environment and working directory."""
        return subprocess.run(
            [
                "buildah",
                "--storage-driver",
                STORAGE_DRIVER,
                "run",
                "--isolation",
                "chroot",
                self.container,
                "--",
                *command,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def read_only(
        self,
        command: Sequence[str],
        *,
        writable: Mapping[str, Path | None],
        read_only_binds: Mapping[str, Path] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The argv that runs ``command`` on the read-only root; ``writable`` maps each writable
        directory to a host directory bound there, or None for an empty tmpfs."""
        root = shlex.quote(str(self.rootfs))
        steps = [
            "set -e",
            f"mount --bind {root} {root}",
            f"mount -o remount,bind,ro {root}",
            f"mount -t proc proc {root}/proc",
            f"mount -t tmpfs -o size=1m,mode=755 tmpfs {root}/dev",
        ]
        for device in ("null", "zero", "random", "urandom"):
            steps += [f"touch {root}/dev/{device}", f"mount --bind /dev/{device} {root}/dev/{device}"]
        for inside, outside in writable.items():
            target = root + shlex.quote(inside)
            if outside is None:
                steps.append(f"mount -t tmpfs -o size=64m,mode=1777 tmpfs {target}")
            else:
                steps.append(f"mount --bind {shlex.quote(str(outside))} {target}")
        for inside, outside in (read_only_binds or {}).items():
            target = root + shlex.quote(inside)
            steps += [f"mount --bind {shlex.quote(str(outside))} {target}", f"mount -o remount,bind,ro {target}"]
        variables = {**self.env, "HOME": self.config.get("WorkingDir") or "/", **(env or {})}
        chdir = self.config.get("WorkingDir") or "/"
        steps.append(
            f"exec chroot --userspec={shlex.quote(self.user)} {root} /usr/bin/env -i -C {shlex.quote(chdir)} "
            + " ".join(shlex.quote(f"{k}={v}") for k, v in variables.items())
            + ' "$@"'
        )
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(steps), "sh", *command]


@contextmanager
def opened(name: str) -> Iterator[OpenImage]:
    config = json.loads(buildah("inspect", "--type", "image", name))["Docker"]["config"]
    container = buildah("from", "--pull=never", name).strip()
    try:
        rootfs = Path(buildah("mount", container).strip())
        yield OpenImage(name, container, rootfs, config)
    finally:
        buildah("rm", container)
