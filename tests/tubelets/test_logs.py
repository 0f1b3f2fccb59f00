import subprocess
import sys

from tubelets import logs


def test_child_processes_write_to_the_log_and_tubelets_messages_to_the_terminal(tmp_path, capfd):
    log = str(tmp_path / "run.log")
    with logs.capture_process_output(log_path=log) as path:
        assert logs.active_log_path() == path == log
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('No semi_persistent_directory\\n')"])
        print("run r: 1 videos", file=sys.stderr)
    assert logs.active_log_path() is None
    captured = capfd.readouterr().err
    assert "run r: 1 videos" in captured and "semi_persistent" not in captured
    assert "No semi_persistent_directory" in open(log).read()


def test_verbose_echoes_the_log_to_the_terminal(tmp_path, capfd):
    log = str(tmp_path / "run.log")
    with logs.capture_process_output(verbose=True, log_path=log):
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('worker says hi\\n')"])
    assert "worker says hi" in capfd.readouterr().err and "worker says hi" in open(log).read()
