"""Many threads and several processes logging into one file at once: every row
arrives exactly once, and nobody sees an error (no "database is locked")."""

from __future__ import annotations

import subprocess
import sys
import threading

from faults_support import child_env, integrity, query, write_script

from promptlog import SimpleBot, store

THREADS = 64
CALLS_PER_THREAD = 200


def test_64_threads_making_200_bot_calls_each_lose_nothing(db_path):
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def calls(index: int) -> None:
        bot = SimpleBot("You count.", model_name="gpt-4o-mini", mock_response="ok",
                        name=f"bot{index}")
        try:
            start.wait()
            for number in range(CALLS_PER_THREAD):
                bot(f"thread {index} call {number}")
        except BaseException as e:  # every error counts, whatever its kind
            errors.append(e)

    threads = [threading.Thread(target=calls, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.flush()

    assert errors == []
    total = THREADS * CALLS_PER_THREAD
    assert query(db_path, "SELECT COUNT(*), COUNT(DISTINCT id) FROM calls") == [(total, total)]
    per_bot = dict(query(db_path, "SELECT bot_name, COUNT(*) FROM calls GROUP BY bot_name"))
    assert per_bot == {f"bot{i}": CALLS_PER_THREAD for i in range(THREADS)}
    assert query(db_path, "SELECT status, COUNT(*) FROM calls GROUP BY status") == [
        ("succeeded", total)
    ]
    # Every message arrived once: none lost, none written twice by a retried batch.
    assert query(
        db_path, "SELECT COUNT(DISTINCT json_extract(messages, '$[1].content')) FROM calls"
    ) == [(total,)]
    assert integrity(db_path) == "ok"


PROCESSES = 4
RUNS_PER_PROCESS = 500


def test_4_processes_logging_500_runs_each_into_one_file_lose_nothing(db_path, tmp_path):
    script = write_script(
        tmp_path,
        """
        import sys
        from promptlog import Experiment, experiment, metric

        @experiment
        def work(process):
            return {"process": process}

        @metric
        def accuracy(value):
            return value

        @metric
        def passed(value):
            return value

        @metric
        def tokens(value):
            return value

        def run(process):
            result = work(process)
            accuracy(0.5)
            passed(True)
            tokens(42)
            return result

        process = int(sys.argv[1])
        Experiment(f"process-{process}", num_executions=int(sys.argv[2]), quiet=True).run(
            run, process
        )
        """,
    )
    # Started together on a file that does not exist yet: they race to create it too.
    children = [
        subprocess.Popen(
            [sys.executable, str(script), str(i), str(RUNS_PER_PROCESS)],
            env=child_env(db_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    for child in children:
        out, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
        assert "Traceback" not in err and "locked" not in err, err

    assert query(db_path, "SELECT name, status FROM experiments ORDER BY name") == [
        (f"process-{i}", "succeeded") for i in range(PROCESSES)
    ]
    per_experiment = query(
        db_path,
        "SELECT e.name, COUNT(*), COUNT(DISTINCT r.execution_index), MIN(r.execution_index), "
        "MAX(r.execution_index), SUM(r.status = 'succeeded') "
        "FROM runs r JOIN experiments e ON e.id = r.experiment_id GROUP BY e.name ORDER BY e.name",
    )
    n = RUNS_PER_PROCESS
    assert per_experiment == [(f"process-{i}", n, n, 0, n - 1, n) for i in range(PROCESSES)]
    assert query(db_path, "SELECT name, COUNT(*) FROM metrics GROUP BY name ORDER BY name") == [
        ("accuracy", PROCESSES * n),
        ("passed", PROCESSES * n),
        ("tokens", PROCESSES * n),
    ]
    assert query(
        db_path,
        "SELECT COUNT(*) FROM runs r JOIN experiments e ON e.id = r.experiment_id "
        "WHERE json_extract(r.result, '$.process') = CAST(substr(e.name, 9) AS INTEGER)",
    ) == [(PROCESSES * n,)]
    assert integrity(db_path) == "ok"


def test_ids_are_unique_time_sorted_ulids_across_threads_and_a_forked_child():
    import os
    import time

    crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    before = time.time_ns() // 1_000_000
    made: list[list[str]] = [[] for _ in range(8)]

    def make(into: list[str]) -> None:
        into.extend(store.new_id() for _ in range(20_000))

    threads = [threading.Thread(target=make, args=(ids,)) for ids in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child's ids, as a fork at any point would make them
        os.write(write, "\n".join(store.new_id() for _ in range(20_000)).encode())
        os._exit(0)
    os.close(write)
    parent = [store.new_id() for _ in range(20_000)]  # meanwhile, from the same count on
    with os.fdopen(read) as pipe:
        forked = pipe.read().split("\n")
    os.waitpid(child, 0)
    after = time.time_ns() // 1_000_000

    every = [i for ids in made for i in ids] + parent + forked
    assert len(set(every)) == len(every) == 10 * 20_000
    for ids in [*made, parent, forked]:
        assert ids == sorted(ids)  # in creation order within each thread
    # Ids are unique between processes by random bits drawn per process (characters
    # 11-18); a forked child must draw its own, or it would repeat its parent's ids.
    assert {i[10:18] for i in forked}.isdisjoint({i[10:18] for i in parent})
    for one in every[::997]:
        assert len(one) == 26 and set(one) <= set(crockford)
        millisecond = 0
        for character in one[:10]:
            millisecond = millisecond * 32 + crockford.index(character)
        assert before <= millisecond <= after
