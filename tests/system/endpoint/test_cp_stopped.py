# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``docker cp`` / ``export`` / ``diff`` on containers that are not running, as dockerd serves them: the
endpoint boots the container's VM in maintenance mode (services/portlayer/containers/maintenance.py) and
the real tether, run by the host emulator, serves the archive requests with no process started. The
container's Docker state, log and events stay as they were; the real docker CLI and Docker SDK."""

import concurrent.futures
import glob
import io
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.vic.containers.tools.harness.endpoint import (
    Endpoint, docker_cli, docker_command, running_vch, sdk)
from ansible_collections.vic.containers.tools.harness.waiting import until

# What a maintenance boot must never make a container's event stream show.
RUN_EVENTS = {"start", "die", "stop", "kill", "restart", "health_status"}


@pytest.fixture(scope="module")
def vch(vcsim, tmp_path_factory, registries, emulator):
    found = running_vch(vcsim, "cpoff", tmp_path_factory.mktemp("certs") / "cpoff", registries, emulator)
    yield found
    found["endpoint"].stop()  # the one running now: a test restarts it


def logs(vch):
    return "endpoint:\n%s\nemulator:\n%s" % (vch["endpoint"].log()[-4000:], vch["emulator"].log()[-3000:])


def docker(vch, *args, **options):
    return docker_cli(vch, *args, **options)


def ok(vch, *args, **options):
    done = docker(vch, *args, **options)
    assert done.returncode == 0, (args, done.stdout, done.stderr, logs(vch))
    return done


def state(vch, name):
    """What a maintenance boot must leave as it was: Docker's State fields, its restart count, its log."""
    shown = ok(vch, "inspect", "--format", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} "
               "{{.State.StartedAt}} {{.State.FinishedAt}} {{.RestartCount}}", name).stdout
    return shown, ok(vch, "logs", name).stdout


def vms_off(vch):
    """No container VM runs (the emulator runs no tether): every maintenance boot ended."""
    until(lambda: vch["emulator"].processes() == [], lambda: "the maintenance boots to end\n" + logs(vch), timeout=60)


def nothing_left(vch):
    vms_off(vch)
    left = vch["emulator"].leftovers()
    left.pop("files", None)  # the emulator's run directory stays while it runs
    assert left == {}, (left, logs(vch))


def vm_log(vch, name):
    """The container VM's log port file (output.log in its folder, vcsim's datastore directory)."""
    short = ok(vch, "inspect", "--format", "{{.Id}}", name).stdout.strip()[:12]
    found = glob.glob(os.path.join(vch["sim"].datastores["LocalDS_0"], "%s-%s" % (name, short), "output.log"))
    assert len(found) == 1, found
    return Path(found[0])


def run_events(vch, name, since, until_time):
    client = sdk(vch)
    try:
        seen = client.events(since=since, until=until_time, decode=True, filters={"container": name})
        return [event.get("Action") or event.get("status") for event in seen]
    finally:
        client.close()


def test_cp_into_a_created_container_then_start_sees_the_files(vch, tmp_path):
    ok(vch, "create", "--name", "fresh", vch["image"], "sh", "-c", "cat /etc/greeting /tmp/dir/a /tmp/dir/sub/b")
    try:
        before = state(vch, "fresh")
        (tmp_path / "greeting").write_text("hello from cp\n")
        (tmp_path / "dir" / "sub").mkdir(parents=True)
        (tmp_path / "dir" / "a").write_text("file a\n")
        (tmp_path / "dir" / "sub" / "b").write_text("file b\n")
        ok(vch, "cp", str(tmp_path / "greeting"), "fresh:/etc/greeting")
        ok(vch, "cp", str(tmp_path / "dir"), "fresh:/tmp/")
        assert state(vch, "fresh") == before, logs(vch)
        assert before[0].startswith("created false 0 "), before
        vms_off(vch)
        assert state(vch, "fresh") == before, logs(vch)
        ran = ok(vch, "start", "-a", "fresh")
        assert ran.stdout == "hello from cp\nfile a\nfile b\n", (ran.stdout, ran.stderr, logs(vch))
    finally:
        docker(vch, "rm", "-f", "fresh")
    nothing_left(vch)


def test_cp_export_and_diff_of_an_exited_container_leave_its_state(vch, tmp_path):
    script = "busybox mkdir -p /out/dir && echo result > /out/f && echo deep > /out/dir/g && echo kept > /data/v; exit 3"
    ran = docker(vch, "run", "--name", "built", "-v", "/data", vch["image"], "sh", "-c", script)
    assert ran.returncode == 3, (ran.stderr, logs(vch))
    try:
        vms_off(vch)
        before = state(vch, "built")
        log_file = vm_log(vch, "built")
        log_bytes = log_file.read_bytes()
        since = time.time()
        ok(vch, "cp", "built:/out/f", str(tmp_path / "f"))
        assert (tmp_path / "f").read_text() == "result\n"
        ok(vch, "cp", "built:/out/dir", str(tmp_path / "dir"))
        assert (tmp_path / "dir" / "g").read_text() == "deep\n"
        ok(vch, "cp", "built:/data/v", str(tmp_path / "v"))  # a path under a volume
        assert (tmp_path / "v").read_text() == "kept\n"
        ok(vch, "export", "-o", str(tmp_path / "rootfs.tar"), "built")
        with tarfile.open(tmp_path / "rootfs.tar") as exported:
            names = exported.getnames()
            assert "out/f" in names and "bin/busybox" in names, names[:20]
            assert not any(name.startswith("data/") for name in names), "the volume is left out, as dockerd does"
        diff = ok(vch, "diff", "built").stdout.splitlines()
        assert "A /out" in diff and "A /out/f" in diff, diff
        missing = docker(vch, "cp", "built:/nope", str(tmp_path / "nope"))
        assert missing.returncode != 0
        assert "Could not find the file /nope in container built" in missing.stderr, missing.stderr
        assert state(vch, "built") == before, logs(vch)
        vms_off(vch)
        assert state(vch, "built") == before, logs(vch)
        assert before[0].startswith("exited false 3 "), before
        assert not RUN_EVENTS & set(run_events(vch, "built", since, time.time())), logs(vch)
        assert log_file.read_bytes() == log_bytes, "the maintenance boots wrote to the container's log"
    finally:
        docker(vch, "rm", "-f", "built")
    nothing_left(vch)


def test_requests_at_once_and_back_to_back_share_one_boot_and_the_archive_api_answers(vch):
    ok(vch, "create", "--name", "shared", vch["image"], "true")
    client = sdk(vch)
    mark = vch["sim"].mark()
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            got = list(pool.map(lambda _i: client.api.get_archive("shared", "/bin/sh"), range(4)))
        for data, stat in got:
            assert stat["name"] == "sh" and stat["linkTarget"] == "/bin/busybox", stat
            assert tarfile.open(fileobj=io.BytesIO(b"".join(data))).getnames() == ["sh"]
        tar = io.BytesIO()
        with tarfile.open(fileobj=tar, mode="w") as archive:
            info = tarfile.TarInfo("put.txt")
            info.size = 3
            archive.addfile(info, io.BytesIO(b"hi\n"))
        assert client.api.put_archive("shared", "/tmp", tar.getvalue())
        data, stat = client.api.get_archive("shared", "/tmp/put.txt")
        assert stat["size"] == 3 and b"hi\n" in b"".join(data)
        assert client.containers.get("shared").status == "created"
        vms_off(vch)
        methods = [call["method"] for call in vch["sim"].calls_since(mark) if "method" in call]
        assert methods.count("PowerOnVM_Task") == 1, methods  # 6 requests, one maintenance boot
        assert methods.count("ReconfigVM_Task") == 2, methods  # the mode on, the mode off
    finally:
        client.close()
        docker(vch, "rm", "-f", "shared")
    nothing_left(vch)


def test_a_stopped_restart_always_container_stays_stopped_after_a_cp(vch, tmp_path):
    ok(vch, "run", "-d", "--name", "always", "--restart", "always", vch["image"], "sh", "-c",
       "echo up > /tmp/mark; sleep 600")
    try:
        until(lambda: docker(vch, "exec", "always", "cat", "/tmp/mark").stdout == "up\n",
              lambda: "the process to run\n" + logs(vch))
        ok(vch, "stop", "-t", "1", "always")
        vms_off(vch)
        before = state(vch, "always")
        ok(vch, "cp", "always:/tmp/mark", str(tmp_path / "mark"))
        assert (tmp_path / "mark").read_text() == "up\n"
        vms_off(vch)
        time.sleep(2)  # what a restart policy reacting to the power-off would have needed to show
        assert state(vch, "always") == before, logs(vch)
        assert docker(vch, "wait", "always", timeout=30).stdout.strip() == before[0].split()[2]
    finally:
        docker(vch, "rm", "-f", "always")
    nothing_left(vch)


def test_docker_wait_for_the_next_exit_is_not_ended_by_a_maintenance_boot(vch, tmp_path):
    ran = docker(vch, "run", "--name", "waited", vch["image"], "sh", "-c", "exit 2")
    assert ran.returncode == 2, (ran.stderr, logs(vch))
    client = sdk(vch)
    waited = {}
    waiting = threading.Thread(target=lambda: waited.update(
        result=client.api.wait("waited", condition="next-exit", timeout=120)), daemon=True)
    try:
        vms_off(vch)
        waiting.start()
        time.sleep(1)  # the wait reaches the endpoint before the cp
        ok(vch, "cp", "waited:/bin/sh", str(tmp_path / "sh"))
        vms_off(vch)  # the maintenance boot came and went
        assert waiting.is_alive() and not waited, waited
        ok(vch, "start", "waited")
        waiting.join(120)
        assert waited["result"]["StatusCode"] == 2, (waited, logs(vch))
    finally:
        if waiting.is_alive():
            waiting.join(120)
        client.close()
        docker(vch, "rm", "-f", "waited")
    nothing_left(vch)


def put_streaming(vch, name, size, midway):
    """``docker cp - name:/tmp/`` of a tar of one file ``big.bin`` of ``size`` bytes, fed through the CLI's stdin:
    ``midway()`` is called once half of it has gone through the pipe, while the put streams into the tether."""
    header = tarfile.TarInfo("big.bin")
    header.size, header.mode = size, 0o644
    command, env = docker_command(vch, "cp", "-", "%s:/tmp/" % name)
    with subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as cp:
        try:
            cp.stdin.write(header.tobuf(format=tarfile.PAX_FORMAT))
            cp.stdin.write(b"\1" * (size // 2))
            midway()
            cp.stdin.write(b"\1" * (size - size // 2) + b"\0" * (-size % 512) + b"\0" * 1024)
            cp.stdin.close()
            assert cp.wait(120) == 0, (cp.stderr.read(), logs(vch))
        finally:
            if cp.poll() is None:
                cp.kill()


def test_a_rename_during_a_maintenance_boot_keeps_the_container_stopped(vch):
    ok(vch, "create", "--name", "before", vch["image"], "ls", "-l", "/tmp/big.bin")
    try:
        put_streaming(vch, "before", 4 << 20, lambda: ok(vch, "rename", "before", "after"))
        assert state(vch, "after")[0].startswith("created false 0 "), logs(vch)
        vms_off(vch)
        assert state(vch, "after")[0].startswith("created false 0 "), logs(vch)
        ran = ok(vch, "start", "-a", "after")
        assert " %d " % (4 << 20) in ran.stdout, (ran.stdout, ran.stderr, logs(vch))
    finally:
        docker(vch, "rm", "-f", "before", "after")
    nothing_left(vch)


def test_a_start_during_a_cp_waits_for_it_and_runs_the_process(vch):
    ok(vch, "create", "--name", "racer", vch["image"], "sh", "-c", "echo ran; ls -l /tmp/big.bin")
    size = 32 << 20
    starting = {}
    start = threading.Thread(target=lambda: starting.update(done=docker(vch, "start", "-a", "racer", timeout=120)),
                             daemon=True)
    try:
        # The start goes while the put streams into the maintenance boot's tether: it waits for the put's end.
        put_streaming(vch, "racer", size, start.start)
        start.join(120)
        started = starting["done"]
        assert started.returncode == 0 and started.stdout.startswith("ran\n"), \
            (started.stdout, started.stderr, logs(vch))
        assert " %d " % size in started.stdout, started.stdout  # the whole file was in before the process ran
        assert state(vch, "racer")[0].startswith("exited false 0 ")
    finally:
        if start.is_alive():
            start.join(120)
        docker(vch, "rm", "-f", "racer")
    nothing_left(vch)


def test_an_endpoint_killed_during_a_maintenance_boot_is_cleaned_up_by_the_next(vch, tmp_path):
    ran = docker(vch, "run", "--name", "crashy", vch["image"], "sh", "-c",
                 "busybox dd if=/dev/zero of=/big bs=1M count=64 2>/dev/null; exit 4")
    assert ran.returncode == 4, (ran.stderr, logs(vch))
    try:
        vms_off(vch)
        before = state(vch, "crashy")
        command, env = docker_command(vch, "cp", "crashy:/big", "-")
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as cp:
            assert cp.stdout.read(65536), logs(vch)  # streaming, then stalled: nobody reads on
            old = vch["endpoint"]
            old.kill()
            cp.kill()
        vch["endpoint"] = Endpoint(vch["sim"], "cpoff", port=old.port, tether_port=old.tether_port)
        vms_off(vch)  # the new endpoint powered the VM off
        until(lambda: state(vch, "crashy") == before, lambda: "the state as it was\n%s\n%s" % (
            state(vch, "crashy"), logs(vch)), timeout=30)
        ok(vch, "cp", "crashy:/big", str(tmp_path / "big"))
        assert (tmp_path / "big").stat().st_size == 64 << 20
    finally:
        docker(vch, "rm", "-f", "crashy")
    nothing_left(vch)


def test_an_endpoint_stopped_during_a_maintenance_boot_ends_it_first(vch):
    ok(vch, "create", "--name", "halted", vch["image"], "true")
    before = state(vch, "halted")
    old = vch["endpoint"]

    def sigterm():
        os.kill(old.proc.pid, signal.SIGTERM)
        old.proc.wait(60)

    try:
        with pytest.raises((AssertionError, BrokenPipeError)):
            put_streaming(vch, "halted", 4 << 20, sigterm)  # the cp fails: its endpoint went
        vms_off(vch)  # before any endpoint runs again: the stopping one powered the VM off
    finally:
        old.stop()  # its log file
        vch["endpoint"] = Endpoint(vch["sim"], "cpoff", port=old.port, tether_port=old.tether_port)
    try:
        assert state(vch, "halted") == before, logs(vch)
    finally:
        docker(vch, "rm", "-f", "halted")
    nothing_left(vch)


def test_a_container_whose_layers_are_gone_gets_an_error_naming_why(vch, tmp_path):
    ok(vch, "create", "--name", "orphan", vch["image"], "true")
    before = state(vch, "orphan")
    images = os.path.join(vch["sim"].datastores["LocalDS_0"], "cpoff", "VIC", "*", "images", "*")
    # The image's layer disks (not the read-write disks' template, scratch-*).
    layers = [path for path in glob.glob(os.path.join(images, "*.vmdk"))
              if not os.path.basename(path).startswith("scratch")]
    assert layers, "no layer disks under %s" % images
    aside = tmp_path / "aside"
    aside.mkdir()
    for path in layers:
        shutil.move(path, aside / ("%d-%s" % (layers.index(path), os.path.basename(path))))
    try:
        refused = docker(vch, "cp", "orphan:/bin/sh", str(tmp_path / "sh"))
        assert refused.returncode != 0, logs(vch)
        assert "its root filesystem could not be assembled" in refused.stderr, (refused.stderr, logs(vch))
        vms_off(vch)
        assert state(vch, "orphan") == before, logs(vch)
    finally:
        for index, path in enumerate(layers):
            if os.path.exists(path):
                os.unlink(path)  # what the emulator made of a missing disk
            shutil.move(aside / ("%d-%s" % (index, os.path.basename(path))), path)
        docker(vch, "rm", "-f", "orphan")
    nothing_left(vch)
