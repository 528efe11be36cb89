"""Contract of JobRepo: rows, queries and leases."""

from __future__ import annotations

import asyncio

import pytest

from bot.models import Job, JobState, OriginKind
from bot.storage import Storage
from tests.storage.helpers import GUILD, NOW, OTHER_GUILD, OTHER_USER, PERIOD, USER, later, new_job

TERMINAL_STATES = (JobState.DELIVERED, JobState.FAILED, JobState.CANCELLED)


async def create(storage: Storage, count: int = 1, **kwargs: object) -> list[Job]:
    """``count`` jobs, each created one second after the last, in one unit."""
    async with storage.unit() as uow:
        return [
            await uow.jobs.create(new_job(**kwargs), later(i))  # type: ignore[arg-type]
            for i in range(count)
        ]


async def test_create_returns_the_stored_pending_job(storage: Storage) -> None:
    async with storage.unit() as uow:
        rid = await uow.ledger.hold(GUILD, USER, PERIOD, 10, 0, NOW)
        job = await uow.jobs.create(new_job(reservation_id=rid, extra={"a": "b"}), NOW)
    assert job.id > 0
    assert job.state is JobState.PENDING
    assert (job.created_at, job.updated_at) == (NOW, NOW)
    assert (job.reservation_id, job.cost, job.provider, job.extra) == (rid, 10, "fal", {"a": "b"})
    assert (job.origin.guild_id, job.origin.channel_id, job.origin.user_id) == (GUILD, 55, USER)
    assert job.origin.user_name == "fox fan"
    assert job.origin.kind is OriginKind.DISCORD
    assert job.request.prompt == "a red fox in the snow" and job.request.seed == 7
    assert job.status_message_id is None and job.provider_handle is None
    async with storage.read() as uow:
        assert await uow.jobs.get(job.id) == job
        assert await uow.jobs.get(job.id + 1000) is None


async def test_terminal_origin_round_trips(storage: Storage) -> None:
    [job] = await create(storage, guild_id=0, user_id=0, kind=OriginKind.TERMINAL)
    async with storage.read() as uow:
        stored = await uow.jobs.get(job.id)
    assert stored is not None and stored.origin.kind is OriginKind.TERMINAL


async def test_update_writes_fields_and_stamps_updated_at(storage: Storage) -> None:
    [job] = await create(storage)
    fields = {
        "state": JobState.GENERATING,
        "provider_handle": {"request_id": "r-1", "endpoint": "fal-ai/pika"},
        "extra": {"note": "x"},
        "status_message_id": 1_300_000_000_000_000_001,
        "result_message_id": 1_300_000_000_000_000_002,
        "error": "a user-safe reason",
        "started_at": later(2),
        "finished_at": later(3),
    }
    async with storage.unit() as uow:
        await uow.jobs.update(job.id, fields, later(4))
    async with storage.read() as uow:
        stored = await uow.jobs.get(job.id)
    assert stored is not None
    assert stored.state is JobState.GENERATING
    assert stored.provider_handle == {"request_id": "r-1", "endpoint": "fal-ai/pika"}
    assert stored.extra == {"note": "x"}
    assert stored.status_message_id == 1_300_000_000_000_000_001
    assert stored.result_message_id == 1_300_000_000_000_000_002
    assert stored.error == "a user-safe reason"
    assert (stored.started_at, stored.finished_at) == (later(2), later(3))
    assert (stored.created_at, stored.updated_at) == (NOW, later(4))


async def test_update_can_clear_a_handle(storage: Storage) -> None:
    [job] = await create(storage)
    async with storage.unit() as uow:
        await uow.jobs.update(job.id, {"provider_handle": {"id": "1"}}, NOW)
        await uow.jobs.update(job.id, {"provider_handle": None, "error": None}, NOW)
        stored = await uow.jobs.get(job.id)
    assert stored is not None and stored.provider_handle is None


async def test_update_refuses_an_unknown_field(storage: Storage) -> None:
    [job] = await create(storage)
    async with storage.unit() as uow:
        with pytest.raises(ValueError, match="guild_id"):
            await uow.jobs.update(job.id, {"guild_id": 5}, NOW)


async def test_find_by_message_takes_the_newest_status_or_result(storage: Storage) -> None:
    old, new, other = await create(storage, 3)
    async with storage.unit() as uow:
        await uow.jobs.update(old.id, {"result_message_id": 500}, NOW)
        await uow.jobs.update(new.id, {"status_message_id": 500}, NOW)
        await uow.jobs.update(other.id, {"status_message_id": 600}, NOW)
    async with storage.read() as uow:
        found = await uow.jobs.find_by_message(500)
        only_result = await uow.jobs.find_by_message(600)
        nothing = await uow.jobs.find_by_message(700)
    assert found is not None and found.id == new.id
    assert only_result is not None and only_result.id == other.id
    assert nothing is None


async def test_unfinished_is_every_open_job_oldest_first(storage: Storage) -> None:
    jobs = await create(storage, 5)
    async with storage.unit() as uow:
        for job, state in zip(jobs[1:4], TERMINAL_STATES, strict=True):
            await uow.jobs.update(job.id, {"state": state}, NOW)
        await uow.jobs.update(jobs[4].id, {"state": JobState.POSTING}, NOW)
    async with storage.read() as uow:
        open_jobs = await uow.jobs.unfinished()
    assert [j.id for j in open_jobs] == [jobs[0].id, jobs[4].id]
    assert open_jobs[1].state is JobState.POSTING


async def test_a_fitting_job_is_open_claimable_and_keeps_its_limit(storage: Storage) -> None:
    """FITTING (bot.video) needs no schema change: the state column takes any state name, and
    a job being fitted is unfinished, counts as running and is taken over when its lease runs
    out, with the upload limit it is fitted to (``extra``) intact."""
    [job] = await create(storage, lease_owner="dead", lease_until=later(25))
    async with storage.unit() as uow:
        await uow.jobs.update(
            job.id, {"state": JobState.FITTING, "extra": {"upload_limit": "10485760"}}, NOW
        )
    async with storage.read() as uow:
        [open_job] = await uow.jobs.unfinished()
        assert await uow.jobs.running_count(GUILD, USER) == 1
    assert open_job.state is JobState.FITTING and open_job.extra["upload_limit"] == "10485760"
    async with storage.unit() as uow:
        assert await uow.jobs.claim("next", later(24), later(54), 10) == []
        [taken] = await uow.jobs.claim("next", later(25), later(55), 10)
    assert (taken.id, taken.state) == (job.id, JobState.FITTING)


async def test_recent_is_newest_first_for_a_guild_or_a_member(storage: Storage) -> None:
    mine = await create(storage, 3)
    theirs = await create(storage, 2, user_id=OTHER_USER)
    await create(storage, 1, guild_id=OTHER_GUILD)
    async with storage.read() as uow:
        member = await uow.jobs.recent(GUILD, USER, 10)
        guild = await uow.jobs.recent(GUILD, None, 10)
        limited = await uow.jobs.recent(GUILD, None, 2)
    assert [j.id for j in member] == [j.id for j in mine[::-1]]
    assert [j.id for j in guild] == [j.id for j in (mine + theirs)[::-1]]
    assert [j.id for j in limited] == [theirs[1].id, theirs[0].id]


async def test_running_count_and_last_created_at(storage: Storage) -> None:
    async with storage.read() as uow:
        assert await uow.jobs.running_count(GUILD, USER) == 0
        assert await uow.jobs.last_created_at(GUILD, USER) is None
    jobs = await create(storage, 3)
    await create(storage, 1, user_id=OTHER_USER)
    async with storage.unit() as uow:
        await uow.jobs.update(jobs[0].id, {"state": JobState.DELIVERED}, NOW)
        await uow.jobs.update(jobs[1].id, {"state": JobState.QUEUED}, NOW)
        assert await uow.jobs.running_count(GUILD, USER) == 2
        assert await uow.jobs.running_count(OTHER_GUILD, USER) == 0
        assert await uow.jobs.last_created_at(GUILD, USER) == later(2)


async def test_claim_leases_free_jobs_oldest_first_up_to_limit(storage: Storage) -> None:
    jobs = await create(storage, 4)
    async with storage.unit() as uow:
        await uow.jobs.update(jobs[1].id, {"state": JobState.DELIVERED}, NOW)
    async with storage.unit() as uow:
        first = await uow.jobs.claim("a", NOW, later(30), 2)
    async with storage.unit() as uow:
        rest = await uow.jobs.claim("a", NOW, later(30), 10)
    assert [j.id for j in first] == [jobs[0].id, jobs[2].id]
    assert [j.id for j in rest] == [jobs[3].id]
    assert first[0] == jobs[0]  # the whole job comes back


async def test_a_held_lease_is_not_claimed_until_it_expires(storage: Storage) -> None:
    [job] = await create(storage)
    async with storage.unit() as uow:
        assert [j.id for j in await uow.jobs.claim("a", NOW, later(30), 10)] == [job.id]
    async with storage.unit() as uow:
        assert await uow.jobs.claim("b", later(29), later(59), 10) == []
        assert await uow.jobs.claim("a", later(29), later(59), 10) == []  # held: renew it
    async with storage.unit() as uow:
        taken = await uow.jobs.claim("b", later(30), later(60), 10)  # expired at its instant
    assert [j.id for j in taken] == [job.id]
    async with storage.unit() as uow:
        assert await uow.jobs.renew("a", [job.id], later(90)) == []  # lost to b
        assert await uow.jobs.renew("b", [job.id], later(90)) == [job.id]
        assert await uow.jobs.claim("c", later(61), later(91), 10) == []  # renewed to 90


async def test_create_with_a_lease_holds_the_job(storage: Storage) -> None:
    async with storage.unit() as uow:
        job = await uow.jobs.create(new_job(lease_owner="a", lease_until=later(30)), NOW)
        free = await uow.jobs.create(new_job(), NOW)
    async with storage.unit() as uow:
        assert [j.id for j in await uow.jobs.claim("b", later(1), later(31), 10)] == [free.id]
        assert await uow.jobs.renew("a", [job.id], later(60)) == [job.id]


async def test_finished_jobs_are_never_claimed_nor_renewed(storage: Storage) -> None:
    jobs = await create(storage, 3)
    async with storage.unit() as uow:
        assert len(await uow.jobs.claim("a", NOW, later(30), 10)) == 3
        for job, state in zip(jobs, TERMINAL_STATES, strict=True):
            await uow.jobs.update(job.id, {"state": state}, NOW)
        assert await uow.jobs.renew("a", [j.id for j in jobs], later(60)) == []
    async with storage.unit() as uow:
        assert await uow.jobs.claim("b", later(100), later(130), 10) == []


async def test_renew_returns_only_ids_still_held_sorted(storage: Storage) -> None:
    jobs = await create(storage, 3)
    async with storage.unit() as uow:
        await uow.jobs.claim("a", NOW, later(30), 10)
        held = await uow.jobs.renew("a", [jobs[2].id, jobs[0].id, 9_999], later(60))
        assert held == [jobs[0].id, jobs[2].id]
        assert await uow.jobs.renew("a", [], later(60)) == []
    async with storage.unit() as uow:
        # jobs[1] kept its old lease (until 30); the renewed ones hold until 60
        assert [j.id for j in await uow.jobs.claim("b", later(45), later(75), 10)] == [jobs[1].id]


async def test_release_frees_only_the_owners_leases(storage: Storage) -> None:
    jobs = await create(storage, 3)
    async with storage.unit() as uow:
        await uow.jobs.claim("a", NOW, later(30), 2)
        await uow.jobs.claim("b", NOW, later(30), 1)
        await uow.jobs.release("a", [jobs[0].id, jobs[2].id])  # jobs[2] is b's: untouched
        await uow.jobs.release("a", [])
    async with storage.unit() as uow:
        assert [j.id for j in await uow.jobs.claim("c", later(1), later(31), 10)] == [jobs[0].id]
        assert await uow.jobs.renew("b", [jobs[2].id], later(60)) == [jobs[2].id]
        assert await uow.jobs.renew("a", [jobs[0].id, jobs[1].id], later(60)) == [jobs[1].id]
    async with storage.read() as uow:
        stored = await uow.jobs.get(jobs[0].id)
    assert stored is not None and stored.state is JobState.PENDING  # still unfinished


async def test_concurrent_claims_never_hand_out_the_same_job(storage: Storage) -> None:
    jobs = await create(storage, 40)

    async def claimer(owner: str) -> list[int]:
        got: list[int] = []
        for _ in range(40):
            async with storage.unit() as uow:
                batch = await uow.jobs.claim(owner, NOW, later(30), 3)
            if not batch:
                return got
            got.extend(j.id for j in batch)
            await asyncio.sleep(0)
        return got

    results = await asyncio.wait_for(asyncio.gather(*(claimer(f"p{i}") for i in range(4))), 60)
    claimed = [job_id for result in results for job_id in result]
    assert len(claimed) == len(set(claimed))
    assert sorted(claimed) == [j.id for j in jobs]


async def test_claim_takes_only_the_origin_kinds_asked_for(storage: Storage) -> None:
    """A process claims only jobs it can show: ``pikabot generate`` never holds a Discord
    job (which would keep it from a live bot), and the oldest jobs of another kind do not
    use up the limit."""
    [discord_job] = await create(storage)
    terminal = await create(storage, 2, guild_id=0, user_id=0, kind=OriginKind.TERMINAL)
    async with storage.unit() as uow:
        assert await uow.jobs.claim("gen", NOW, later(30), 10, kinds=()) == []
        taken = await uow.jobs.claim("gen", NOW, later(30), 1, kinds=[OriginKind.TERMINAL])
    assert [j.id for j in taken] == [terminal[0].id]
    async with storage.unit() as uow:
        both = {OriginKind.DISCORD, OriginKind.TERMINAL}
        rest = await uow.jobs.claim("bot", NOW, later(30), 10, kinds=both)
    assert [j.id for j in rest] == [discord_job.id, terminal[1].id]


async def test_line_lists_waiting_jobs_and_counts_slots_per_guild(storage: Storage) -> None:
    """Waiting: PENDING without a slot, lease free or live. A slot is taken once (the first
    instant stays) and held until the job ends; the last start is per waiting guild."""
    first, second, third = await create(storage, 3)
    (other,) = await create(storage, guild_id=OTHER_GUILD)
    async with storage.unit() as uow:
        dead = await uow.jobs.create(
            new_job(lease_owner="gone", lease_until=later(5)), later(3)
        )  # its lease runs out at +5 s
        live = await uow.jobs.create(new_job(lease_owner="here", lease_until=later(60)), later(4))
        await uow.jobs.take_slots([first.id], later(10))
        await uow.jobs.take_slots([first.id, second.id], later(20))  # first keeps +10 s
        await uow.jobs.update(second.id, {"state": JobState.DELIVERED}, later(21))
    async with storage.read() as uow:
        line = await uow.jobs.line(later(30))
        assert await uow.jobs.open_counts(GUILD) == (5, 4)
        assert await uow.jobs.open_counts(OTHER_GUILD) == (5, 1)
    assert [(w.job_id, w.guild_id) for w in line.waiting] == [
        (third.id, GUILD),
        (other.id, OTHER_GUILD),
        (live.id, GUILD),
    ]
    assert line.waiting[0].queued_at == later(2)
    assert dead.id not in {w.job_id for w in line.waiting}
    assert line.running == {GUILD: 1}  # second ended: its slot is free
    assert line.last_start == {GUILD: later(20)}  # OTHER_GUILD never started one


async def test_claim_with_reclaim_takes_the_owners_own_live_leases_too(storage: Storage) -> None:
    """A restarted sole bot reclaims its previous run's jobs at once; others' stay theirs."""
    async with storage.unit() as uow:
        mine = await uow.jobs.create(new_job(lease_owner="sole-bot", lease_until=later(60)), NOW)
        theirs = await uow.jobs.create(new_job(lease_owner="other", lease_until=later(60)), NOW)
    async with storage.unit() as uow:
        assert await uow.jobs.claim("sole-bot", later(1), later(30), 10) == []
        taken = await uow.jobs.claim("sole-bot", later(1), later(30), 10, reclaim=True)
    assert [j.id for j in taken] == [mine.id]
    assert theirs.id not in {j.id for j in taken}


async def test_only_an_sqlite_bot_is_the_sole_bot(storage_url: str) -> None:
    from bot.storage import Role, open_storage

    opened = await open_storage(storage_url, role=Role.BOT)
    try:
        assert opened.sole_bot is (opened.backend == "sqlite")
    finally:
        await opened.close()
