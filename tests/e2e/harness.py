"""Runs the real ``oz-bridge run`` as a subprocess, against fakes served from the test process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import yaml

API_KEY = "wk-e2e-secret-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(
    check: Callable[[], Awaitable[bool] | bool], within: float = 15.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def fast_config(targets: dict[str, Any], routes: list[dict[str, Any]], **poll: Any) -> dict[str, Any]:
    return {
        "poll": {"interval": 0.2, "sweep": 1, "lookback": 3, "page_size": 100, **poll},
        "delivery": {"check_interval": 0.1, "first_retry": 0.2, "shutdown_grace": 5},
        "targets": targets,
        "routes": routes,
    }


@dataclass
class BridgeProcess:
    """One ``oz-bridge run`` process with its own config, database and port."""

    workdir: Path
    oz_url: str
    config: dict[str, Any]
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    output: list[str] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    _reader: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.workdir / 'bridge.db'}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OZ_", "SLACK_", "WARP_"))}
        env.update(
            WARP_API_KEY=API_KEY,
            OZ_API_BASE_URL=f"{self.oz_url}/api/v1",
            OZ_BRIDGE_DATABASE_URL=self.database_url,
            OZ_BRIDGE_HOST="127.0.0.1",
            OZ_BRIDGE_PORT=str(self.port),
            OZ_BRIDGE_LOG_FORMAT="json",
            OZ_BRIDGE_LOG_LEVEL="debug",
        )
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        config_path = self.workdir / "bridge.yaml"
        config_path.write_text(yaml.safe_dump(self.config))
        self.output.clear()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge.cli", "run", "--config", str(config_path),
            env=self.env(), cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        await wait_until(self._healthy, within=20, what="bridge /healthz")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace"))

    async def _healthy(self) -> bool:
        if self.proc is not None and self.proc.returncode is not None:
            raise AssertionError("bridge exited early:\n" + "".join(self.output))
        try:
            status, _ = await self.get("/healthz")
        except aiohttp.ClientError:
            return False
        return status == 200

    async def get(self, path: str) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            return response.status, await response.text()

    async def metric(self, name: str) -> float:
        _, text = await self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                head, value = line.rsplit(" ", 1)
                if head == name or head.startswith(name + "{"):
                    total += float(value)
        return total

    async def stop(self, sig: int = signal.SIGTERM, within: float = 20) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), within)
        if self._reader is not None:
            await self._reader
        return code

    async def kill(self) -> None:
        await self.stop(signal.SIGKILL)
