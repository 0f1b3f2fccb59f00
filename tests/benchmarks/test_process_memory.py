import multiprocessing
import os
import signal
import subprocess
import time

import process_memory
import psutil
import pytest

pytestmark = pytest.mark.smoke


def test_a_child_that_is_still_its_parents_copy_is_not_counted():
    me = psutil.Process()
    pid = os.fork()
    if pid == 0:  # the copy: what a worker is between forking and running ffmpeg
        time.sleep(3)
        os._exit(0)
    try:
        time.sleep(0.2)
        assert process_memory.is_fork_copy(psutil.Process(pid), me)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with subprocess.Popen(["sleep", "5"]) as child:
        time.sleep(0.2)
        assert not process_memory.is_fork_copy(psutil.Process(child.pid), me)  # running a program of its own
        child.kill()


def test_a_spawned_pool_worker_is_counted():
    # gpu_check's prepare generates its sets in such workers: work of their own, unlike a fork copy about to exec.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        worker = psutil.Process(pool.apply(os.getpid))
        assert worker.ppid() == os.getpid() and not process_memory.is_fork_copy(worker, psutil.Process())
