# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Containers really run: the issue's "What a user gets" lines with the real docker CLI and the Docker SDK,
against a VCH deployed on vcsim, its endpoint, and the host emulator running the real tether (the agent)
in fresh namespaces. Output is compared byte for byte; every test checks that the containers it ran left
no process, mount, loop device or namespace behind (``tools/harness/emulator.py``).
"""

import concurrent.futures
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import tarfile
import termios
import time

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, docker_cli, docker_command, running_vch, sdk
from ansible_collections.vic.containers.tools.harness.waiting import until


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries, emulator):  # pylint: disable=redefined-outer-name
    found = running_vch(vcsim, "run", tmp_path_factory.mktemp("certs") / "run", registries, emulator)
    yield found
    found["endpoint"].stop()  # the one running now: a test restarts it


def logs(vch):
    """The endpoint's and the emulator's logs, the end of each: what a failure message needs."""
    return "endpoint:\n%s\nemulator:\n%s" % (vch["endpoint"].log()[-3000:], vch["emulator"].log()[-3000:])


def docker(vch, *args, **options):
    return docker_cli(vch, *args, **options)


def nothing_left(vch):
    """Every VM's processes ended (their namespaces, mounts and loop devices go with them)."""
    until(lambda: vch["emulator"].processes() == [], lambda: "the containers' processes to end\n" + logs(vch))
    left = vch["emulator"].leftovers()
    left.pop("files", None)  # the emulator's run directory stays while it runs
    assert left == {}, (left, logs(vch))


def test_run_rm_echo_hello_prints_hello_and_exits_0(vch):
    before = containers(vch)
    ran = docker(vch, "run", "--rm", vch["image"], "echo", "hello")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "hello\n", ""), logs(vch)
    assert containers(vch) == before, logs(vch)   # --rm: nothing left of it
    nothing_left(vch)


def test_run_gives_the_process_exit_code(vch):
    ran = docker(vch, "run", "--rm", vch["image"], "sh", "-c", "exit 3")
    assert ran.returncode == 3, (ran.stderr, logs(vch))
    nothing_left(vch)


def test_run_keeps_stdout_and_stderr_apart(vch):
    ran = docker(vch, "run", "--rm", vch["image"], "sh", "-c", "echo out; echo err >&2")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "out\n", "err\n"), logs(vch)


def test_a_detached_container_logs_top_exec_stop_and_wait(vch):
    started = docker(vch, "run", "-d", "--name", "web", vch["image"], "sh", "-c", "echo ready; exec httpd -f -p 80")
    assert started.returncode == 0, (started.stderr, logs(vch))
    try:
        command, env = docker_command(vch, "logs", "-f", "web")
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as follow:
            try:
                # A bound, not a timed assertion: a follow that never prints must fail, not hang the suite.
                readable, _unused, _unused2 = select.select([follow.stdout], [], [], 60)
                line = follow.stdout.readline() if readable else "(nothing within 60 s)"
                assert line == "ready\n", (line, logs(vch))
            finally:
                follow.kill()
        top = docker(vch, "top", "web")
        assert top.returncode == 0 and "httpd -f -p 80" in top.stdout, (top.stdout, top.stderr, logs(vch))
        listed = docker(vch, "exec", "web", "ls", "/")
        assert listed.returncode == 0 and {"bin", "etc", "proc"} <= set(listed.stdout.split()), (listed, logs(vch))
        missing = docker(vch, "exec", "web", "no-such-command")
        assert missing.returncode == 127, (missing, logs(vch))
        stopped = docker(vch, "stop", "-t", "2", "web")
        assert stopped.returncode == 0, (stopped.stderr, logs(vch))
        waited = docker(vch, "wait", "web")
        assert waited.stdout == "143\n", (waited, logs(vch))   # httpd ended by the TERM
    finally:
        docker(vch, "rm", "-f", "web")
    nothing_left(vch)


def test_stop_kills_a_process_that_ignores_term_after_the_timeout(vch):
    started = docker(vch, "run", "-d", "--name", "stubborn", vch["image"], "sh", "-c",
                     "trap '' TERM; echo ready; while true; do sleep 1; done")
    assert started.returncode == 0, (started.stderr, logs(vch))
    try:
        until(lambda: docker(vch, "logs", "stubborn").stdout == "ready\n", lambda: "the trap to be set\n" + logs(vch))
        assert docker(vch, "stop", "-t", "2", "stubborn").returncode == 0, logs(vch)
        waited = docker(vch, "wait", "stubborn")
        assert waited.stdout == "137\n", (waited, logs(vch))
    finally:
        docker(vch, "rm", "-f", "stubborn")
    nothing_left(vch)


def test_a_volume_written_by_one_container_is_read_by_the_next(vch):
    wrote = docker(vch, "run", "-d", "--name", "writer", "-v", "data:/data", vch["image"], "sh", "-c",
                   "echo x > /data/f")
    assert wrote.returncode == 0, (wrote.stderr, logs(vch))
    try:
        assert docker(vch, "wait", "writer").stdout == "0\n", logs(vch)
        read = docker(vch, "run", "--rm", "-v", "data:/data", vch["image"], "cat", "/data/f")
        assert (read.returncode, read.stdout) == (0, "x\n"), (read.stderr, logs(vch))
    finally:
        docker(vch, "rm", "-f", "writer")
        docker(vch, "volume", "rm", "data")
    nothing_left(vch)


def test_an_unknown_command_is_dockerds_error_and_exit_127(vch):
    ran = docker(vch, "run", "--rm", vch["image"], "no-such-command")
    assert ran.returncode == 127, (ran.stderr, logs(vch))
    assert 'exec: "no-such-command": executable file not found in $PATH' in ran.stderr, (ran.stderr, logs(vch))
    nothing_left(vch)


def test_the_sdk_runs_a_container_and_gets_its_output(vch):
    client = sdk(vch)
    try:
        assert client.containers.run(vch["image"], ["echo", "hello"], remove=True) == b"hello\n", logs(vch)
    finally:
        client.close()
    nothing_left(vch)


def containers(vch):
    return set(docker(vch, "ps", "-a", "--no-trunc", "--format", "{{.ID}}").stdout.split())


def test_ten_sequential_runs_each_print_and_leave_nothing_behind(vch):
    before = containers(vch)
    for i in range(10):
        ran = docker(vch, "run", "--rm", vch["image"], "echo", str(i))
        assert (ran.returncode, ran.stdout) == (0, "%d\n" % i), (ran.stderr, logs(vch))
    assert containers(vch) == before, logs(vch)
    nothing_left(vch)


def _read_until(fd, wanted, limit=60):
    """What the terminal showed once it matches the regular expression ``wanted`` (bounded: a terminal
    that never shows it fails the test).

    It answers as a terminal does: busybox's line editor asks where the cursor is (ESC [6n) and
    waits for the answer before it reads on."""
    seen = b""
    deadline = time.monotonic() + limit
    while not re.search(wanted, seen, re.S) and time.monotonic() < deadline:
        readable, _unused, _unused2 = select.select([fd], [], [], 1)
        if readable:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the CLI closed the terminal
                break
            if not chunk:
                break
            if b"\x1b[6n" in chunk:
                os.write(fd, b"\x1b[1;1R")
            seen += chunk
    return seen


def test_run_it_is_an_interactive_shell_on_a_terminal_with_its_size_and_ctrl_d(vch):
    command, env = docker_command(vch, "run", "-it", "--rm", vch["image"], "sh")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    cli = subprocess.Popen(command, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        _read_until(master, rb"# ")  # the prompt
        os.write(master, b"echo sum-$((40+2)); stty size; tty\r")
        shown = _read_until(master, rb"/dev/pts/\d+\r\n.*# ")  # its answers, then the next prompt
        assert b"sum-42" in shown and b"33 101" in shown, (shown, logs(vch))
        os.write(master, b"\x04")  # Ctrl-D ends the shell, and the run
        assert cli.wait(60) == 0, (_read_until(master, rb"\0", 1), logs(vch))
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
        os.close(master)
    nothing_left(vch)


def test_cp_both_ways_and_stats_with_the_guests_figures(vch, tmp_path):
    started = docker(vch, "run", "-d", "--name", "files", "--hostname", "filehost", vch["image"], "sleep", "600")
    assert started.returncode == 0, (started.stderr, logs(vch))
    try:
        until(lambda: docker(vch, "top", "files").returncode == 0, lambda: "the tether to connect\n" + logs(vch))
        copied = docker(vch, "cp", "files:/etc/hostname", str(tmp_path))
        assert copied.returncode == 0, (copied.stderr, logs(vch))
        assert (tmp_path / "hostname").read_text() == "filehost\n"
        (tmp_path / "f").write_text("from the host\n")
        put = docker(vch, "cp", str(tmp_path / "f"), "files:/tmp/")
        assert put.returncode == 0, (put.stderr, logs(vch))
        assert docker(vch, "exec", "files", "cat", "/tmp/f").stdout == "from the host\n", logs(vch)
        stats = docker(vch, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}", "files")
        name, usage, *_rest, pids = stats.stdout.split()
        assert stats.returncode == 0 and name == "files" and pids != "0", (stats.stdout, stats.stderr, logs(vch))
        assert not usage.startswith("0B"), stats.stdout  # the guest's own memory figures, not vSphere's zero
    finally:
        docker(vch, "rm", "-f", "files")
    nothing_left(vch)


def test_restart_always_runs_the_process_again_and_counts(vch):
    started = docker(vch, "run", "-d", "--name", "again", "--restart", "always", vch["image"], "sh", "-c",
                     "echo run; sleep 1; exit 1")
    assert started.returncode == 0, (started.stderr, logs(vch))
    try:
        until(lambda: int(docker(vch, "inspect", "--format", "{{.RestartCount}}", "again").stdout or 0) >= 2,
              lambda: "two restarts\n" + logs(vch), timeout=90)
        # Each run's output is in the log, one line per run so far.
        assert docker(vch, "logs", "again").stdout.count("run\n") >= 2, logs(vch)
    finally:
        docker(vch, "rm", "-f", "again")
    nothing_left(vch)


def test_output_and_exit_codes_survive_an_endpoint_kill_while_containers_stream(vch):
    # The count: 20 containers streaming when the endpoint is killed.
    names = ["stream%d" % i for i in range(20)]
    script = "for i in $(seq 1 60); do echo line $i; sleep 0.4; done; exit 5"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda name: docker(vch, "run", "-d", "--name", name, vch["image"], "sh", "-c", script),
                             names))
    assert [ran.returncode for ran in runs] == [0] * len(names), ([ran.stderr for ran in runs], logs(vch))
    old = vch["endpoint"]
    # 20 VMs start at once: on a loaded machine the last one's output may take a while.
    until(lambda: "line 5" in docker(vch, "logs", names[-1]).stdout,
          lambda: "output\n%s\n%s\n%s" % (docker(vch, "ps", "-a").stdout, docker(vch, "logs", names[-1]), logs(vch)),
          timeout=120)
    old.kill()  # SIGKILL, mid-stream
    vch["endpoint"] = Endpoint(vch["sim"], "run", port=old.port, tether_port=old.tether_port)
    try:
        expected = "".join("line %d\n" % i for i in range(1, 61))
        for name in names:
            try:
                waited = docker(vch, "wait", name, timeout=120)
            except subprocess.TimeoutExpired:
                raise AssertionError("docker wait %s did not return\n%s" % (name, logs(vch))) from None
            assert waited.stdout == "5\n", (name, waited.stdout, waited.stderr, logs(vch))
            assert docker(vch, "logs", name).stdout == expected, (name, logs(vch))
    finally:
        for name in names:
            docker(vch, "rm", "-f", name)
    nothing_left(vch)


@pytest.mark.parametrize("options, message", [
    (["--user", "bob"], "unable to find user bob: no matching entries in passwd file"),
    (["--workdir", "/bin/busybox"], 'chdir to cwd ("/bin/busybox") set in config.json failed: not a directory'),
    (["--group-add", "nosuch"], "Unable to find group nosuch: no matching entries in group file"),
])
def test_a_bad_user_or_workdir_is_dockerds_error(vch, options, message):
    # dockerd refuses these when runc starts the process; here the tether does, in the VM, with runc's
    # words on the container's stderr and exit 126 (the process cannot be invoked).
    ran = docker(vch, "run", "--rm", *options, vch["image"], "true")
    assert (ran.returncode, ran.stdout, ran.stderr) == (126, "", message + "\n"), logs(vch)
    nothing_left(vch)


def test_diff_and_export_of_a_running_container(vch, tmp_path):
    script = ("mkdir /new && echo n > /new/file && echo m >> /etc/removed-not && rm /bin/env && "
              "echo changed > /tmp/t && exec sleep 600")
    ran = docker(vch, "run", "-d", "--name", "differ", "-v", "dvol:/vol", vch["image"], "sh", "-c", script)
    assert ran.returncode == 0, (ran.stderr, logs(vch))
    try:
        until(lambda: "/new/file" in docker(vch, "diff", "differ").stdout, lambda: "diff\n" + logs(vch))
        # As dockerd's overlay driver: an added path's parent is changed; what dockerd keeps in its init
        # layer (/etc/hostname, hosts, resolv.conf, /proc, /sys, /dev) is not a change; the volume's
        # mount point is added (it is made in the container's own layer).
        assert docker(vch, "diff", "differ").stdout.splitlines() == [
            "C /bin", "D /bin/env", "C /etc", "A /etc/removed-not", "A /new", "A /new/file", "C /tmp", "A /tmp/t",
            "A /vol"], logs(vch)
        sdk_client = sdk(vch)
        try:
            assert sdk_client.containers.get("differ").diff()[0] == {"Path": "/bin", "Kind": 0}
        finally:
            sdk_client.close()
        out = tmp_path / "export.tar"
        exported = docker(vch, "export", "-o", str(out), "differ")
        assert exported.returncode == 0, (exported.stderr, logs(vch))
        with tarfile.open(out) as tar:
            names = set(tar.getnames())
            assert tar.extractfile("new/file").read() == b"n\n"
            hostname = docker(vch, "inspect", "-f", "{{.Config.Hostname}}", "differ").stdout.encode()
            assert tar.extractfile("etc/hostname").read() == hostname
        assert {"bin/busybox", "bin/sh", "new", "tmp/t", "proc", "sys", "dev", "vol"} <= names, sorted(names)
        assert "bin/env" not in names and not any(name.startswith(("proc/", "sys/", "dev/", "vol/")) for name in names)
    finally:
        docker(vch, "rm", "-f", "differ")
        docker(vch, "volume", "rm", "dvol")
    nothing_left(vch)


def test_read_only_tmpfs_shm_size_ulimits_sysctls_and_groups_are_applied(vch):
    script = ("echo x > /f; echo y > /run/f && cat /run/f; echo y > /vol/f && cat /vol/f; ulimit -n; ulimit -Hn; "
              "cat /proc/sys/kernel/msgmax /proc/mounts /proc/self/status")
    ran = docker(vch, "run", "--rm", "--read-only", "--tmpfs", "/run:size=1m,exec", "--shm-size", "8m", "-v", "ro:/vol",
                 "--ulimit", "nofile=100:200", "--sysctl", "kernel.msgmax=4096", "--group-add", "1234",
                 vch["image"], "sh", "-c", script)
    assert ran.returncode == 0, (ran.stderr, logs(vch))
    assert "can't create /f: Read-only file system" in ran.stderr, ran.stderr
    lines = ran.stdout.splitlines()
    assert lines[:5] == ["y", "y", "100", "200", "4096"], ran.stdout
    mounts = {line.split()[1]: line.split()[3].split(",") for line in lines if len(line.split()) == 6}
    assert "ro" in mounts["/"] and "rw" in mounts["/vol"], mounts
    assert {"rw", "nosuid", "nodev", "size=1024k"} <= set(mounts["/run"]) and "noexec" not in mounts["/run"], mounts
    assert "size=8192k" in mounts["/dev/shm"], mounts
    groups = next(line for line in lines if line.startswith("Groups:")).split()[1:]
    assert "1234" in groups, lines
    docker(vch, "volume", "rm", "ro")
    nothing_left(vch)


@pytest.mark.parametrize("options, message", [
    (["--sysctl", "vm.swappiness=10"], "sysctl 'vm.swappiness=10' is not allowed"),
    (["--tmpfs", "/run:bogus=1"], "Invalid tmpfs option [bogus=1] of /run"),
    (["--tmpfs", "/proc"], "invalid tmpfs destination '/proc'"),
])
def test_what_the_tether_could_not_apply_is_refused_before_anything_is_made(vch, options, message):
    ran = docker(vch, "create", *options, vch["image"], "true")
    assert ran.returncode != 0 and message in ran.stderr, ran.stderr
    assert docker(vch, "ps", "-aq").stdout == ""
