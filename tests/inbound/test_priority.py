"""Answers first: the inbox worker's steps give way to requests waiting for their answer, never for ever."""

from __future__ import annotations

import asyncio

from bridge.inbound.priority import AnswersFirst


async def test_when_calm_steps_run_side_by_side() -> None:
    priority = AnswersFirst(clock=lambda: 100.0)
    inside = 0
    most = 0

    async def step() -> None:
        nonlocal inside, most
        async with priority.step():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(step() for _ in range(4)))
    assert most == 4


async def test_while_requests_come_in_steps_run_one_at_a_time_after_the_answers() -> None:
    priority = AnswersFirst(max_wait=1.0)
    order: list[str] = []

    async def answer() -> None:
        with priority.answering():
            await asyncio.sleep(0.05)
            order.append("answered")

    async def step(name: str) -> None:
        async with priority.step():
            order.append(f"{name} starts")
            await asyncio.sleep(0.01)
            order.append(f"{name} ends")

    answering = asyncio.create_task(answer())
    await asyncio.sleep(0)
    await asyncio.gather(step("a"), step("b"))
    await answering
    assert order == ["answered", "a starts", "a ends", "b starts", "b ends"]


async def test_a_flood_of_requests_slows_the_worker_but_never_stops_it() -> None:
    priority = AnswersFirst(max_wait=0.02)
    done: list[int] = []

    async def step(n: int) -> None:
        async with priority.step():
            done.append(n)

    with priority.answering():  # a request that never finishes while the steps wait
        await asyncio.gather(*(step(n) for n in range(3)))
    assert done == [0, 1, 2]


async def test_calm_returns_once_no_request_came_for_a_while() -> None:
    now = [0.0]
    priority = AnswersFirst(calm_after=0.25, clock=lambda: now[0])
    with priority.answering():
        assert priority.busy
    now[0] = 0.1
    assert priority.busy
    now[0] = 0.4
    assert not priority.busy
