# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tether ISO unpacked as the namespace mode's root: a module of its own, so that no other emulator
(test_iso_worlds.py's QEMU one) follows its vcsim: two would both run each VM that powers on."""

from ansible_collections.vic.containers.tools.harness.emulator import emulated
import urllib.request

from ansible_collections.vic.containers.tools.harness.endpoint import docker_cli, free_port
from ansible_collections.vic.containers.tools.harness.waiting import until
from test_iso_worlds import _vch, tether_iso  # noqa: F401  pylint: disable=unused-import  # the cached ISO build


def test_docker_run_echo_hello_a_peer_by_name_and_a_published_port_with_the_tether_from_the_unpacked_iso(vcsim, tmp_path_factory, registries, tether_iso):
    with emulated(vcsim, tether_python="iso") as emulator:
        vch = _vch(vcsim, "isons", tmp_path_factory, registries, tether_iso)
        try:
            ran = docker_cli(vch, "run", "--rm", vch["image"], "echo", "hello", timeout=30)
            assert (ran.returncode, ran.stdout) == (0, "hello\n"), (ran.stderr, emulator.log()[-3000:])
            # The ISO's tether takes the peers the endpoint sends (docs/containers.md, "Names on networks").
            assert docker_cli(vch, "network", "create", "isonet").returncode == 0
            assert docker_cli(vch, "run", "-d", "--name", "isodb", "--network", "isonet", vch["image"],
                              "sleep", "600").returncode == 0
            db_ip = docker_cli(vch, "inspect", "-f", "{{.NetworkSettings.Networks.isonet.IPAddress}}", "isodb").stdout
            ran = docker_cli(vch, "run", "--rm", "--network", "isonet", vch["image"], "busybox", "ping", "-c", "1",
                             "-W", "1", "isodb", timeout=30)
            assert "PING isodb (%s)" % db_ip.strip() in ran.stdout, (ran.stdout, ran.stderr, emulator.log()[-3000:])
            # ... and answers them by DNS at 127.0.0.11 (the ISO's dnspython: agent/dns_answers.py).
            ran = docker_cli(vch, "run", "--rm", "--network", "isonet", vch["image"], "busybox", "nslookup", "isodb",
                             "127.0.0.11", timeout=30)
            answer = "Name:\tisodb\nAddress: %s\n" % db_ip.strip()
            assert answer in ran.stdout, (ran.stdout, ran.stderr, emulator.log()[-3000:])
            docker_cli(vch, "rm", "-f", "isodb")
            # A published port through the ISO's tether (Debian's asyncssh answers the direct-tcpip channel).
            port = free_port()
            served = docker_cli(vch, "run", "-d", "--name", "isoweb", "-p", "127.0.0.1:%d:80" % port, vch["image"],
                                "sh", "-c", "mkdir /www && echo iso > /www/index.html && exec httpd -f -p 80 -h /www")
            assert served.returncode == 0, served.stderr
            until(lambda: _get(port) == "iso\n", lambda: "httpd through the published port\n" + emulator.log()[-3000:],
                  timeout=60)
            assert docker_cli(vch, "rm", "-f", "isoweb").returncode == 0
        finally:
            vch["endpoint"].stop()


def _get(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as answer:
            return answer.read().decode()
    except OSError:
        return None
