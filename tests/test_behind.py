"""talkhead.behind: work done on a thread of its own, in order, errors back in the caller."""

import threading
import time

import pytest

from talkhead.behind import Behind


def test_work_is_done_in_order_on_another_thread():
    done, threads = [], set()

    def work(item):
        time.sleep(0.001 * (item % 3))   # uneven work must not reorder anything
        done.append(item)
        threads.add(threading.get_ident())

    with Behind(work, depth=2) as behind:
        for i in range(50):
            behind.put(i)
    assert done == list(range(50))   # all of it, in order, finished when the block is left
    assert threads and threading.get_ident() not in threads


def test_the_caller_runs_ahead_by_at_most_depth():
    started, release = threading.Event(), threading.Event()

    def work(item):
        started.set()
        release.wait(5)

    behind = Behind(work, depth=2)
    behind.put(0)                  # taken by the worker, which then waits
    assert started.wait(5)
    behind.put(1)
    behind.put(2)                  # two waiting: the queue is full
    blocked = threading.Thread(target=behind.put, args=(3,))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()      # a third put waits for room
    release.set()
    blocked.join(5)
    assert not blocked.is_alive()
    behind.__exit__(None, None, None)


def test_an_error_in_the_work_reaches_the_caller():
    done = []

    def work(item):
        if item == 3:
            raise OSError("disk full")
        done.append(item)

    with pytest.raises(OSError, match="disk full"):
        with Behind(work) as behind:
            for i in range(100):
                behind.put(i)
                time.sleep(0.001)
    assert done == [0, 1, 2]       # nothing after the failure is worked on


def test_an_error_in_the_caller_drops_what_waits():
    done, started, release = [], threading.Event(), threading.Event()

    def work(item):
        started.set()
        release.wait(5)
        done.append(item)

    with pytest.raises(KeyError):
        with Behind(work, depth=4) as behind:
            for i in range(4):
                behind.put(i)
            assert started.wait(5)   # the worker holds item 0 (without this wait, it may not have taken it yet)
            threading.Timer(0.2, release.set).start()   # item 0 finishes after the block is left
            raise KeyError("stop")
    assert done == [0]             # the block's own error wins; the items still waiting are dropped
