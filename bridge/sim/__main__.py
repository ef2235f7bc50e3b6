"""``python -m bridge.sim``: serve the simulator until interrupted.

Prints one line ``OZ_SIM_URL=<root url>`` on stdout once listening, so a
parent process can read the (possibly ephemeral) port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from .scenario import SCENARIOS, play
from .server import DEFAULT_BASE_PATH, running_simulator
from .state import Simulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bridge.sim", description="Serve the Oz API simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--api-key", default=os.environ.get("OZ_SIM_API_KEY", "sim-key"))
    parser.add_argument("--base-path", default=DEFAULT_BASE_PATH)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), help="play a scenario after start-up")
    parser.add_argument("--speed", type=float, default=1.0)
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    sim = Simulator(api_key=args.api_key)
    async with running_simulator(sim, host=args.host, port=args.port, base_path=args.base_path) as url:
        print(f"OZ_SIM_URL={url}", flush=True)
        print(f"SDK base_url: {url}{args.base_path}  (Bearer {args.api_key})", file=sys.stderr, flush=True)
        if args.scenario:
            await play(sim, SCENARIOS[args.scenario], speed=args.speed)
            print(f"scenario {args.scenario!r} finished", file=sys.stderr, flush=True)
        await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
