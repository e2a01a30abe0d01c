# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The test-host harness: two machines booted from the template on a private bridge, what they can
reach (each other, the host, the apt proxy; nothing beyond), and a teardown that leaves nothing."""

import os
import subprocess

from ansible_collections.vic.containers.tools.harness import testhost


def test_two_machines_network_apt_and_clean_teardown(tmp_path):
    run = testhost.Run(tmp_path / "run")
    try:
        first, second = run.boot("alpha"), run.boot("beta")
        assert run.ssh("alpha", "systemctl is-system-running --wait").stdout.strip() == "running"
        assert run.ssh("alpha", "hostname").stdout.strip() == "alpha"
        ids = {run.ssh(name, "cat /etc/machine-id").stdout.strip() for name in ("alpha", "beta")}
        assert len(ids) == 2 and "" not in ids, ids
        # Each other and the host, over TCP (the template has no ping); no route anywhere else.
        run.ssh("alpha", "exec 3<>/dev/tcp/%s/22" % second["address"])
        run.ssh("beta", "exec 3<>/dev/tcp/%s/22" % first["address"])
        run.ssh("alpha", "exec 3<>/dev/tcp/%s/%d" % (run.host_address, testhost.PROXY_PORT))
        assert run.ssh("alpha", "ip -4 route show default").stdout.strip() == ""
        unreachable = run.ssh("alpha", "ip route get 192.0.2.1", check=False)
        assert unreachable.returncode != 0 and "unreachable" in unreachable.stderr, unreachable
        assert open("/proc/sys/net/ipv4/conf/%s/forwarding" % run.state["bridge"]).read().strip() == "0"
        # apt works through the proxy (the lists are baked in: no update needed to find a package).
        run.ssh("beta", "apt-get install -y -q --no-install-recommends libyaml-0-2")
        assert run.ssh("beta", "dpkg-query -W -f='${Status}' libyaml-0-2").stdout == "install ok installed"
        # Written on the clone, not into the shared template.
        assert not (testhost.template() / "etc" / "hostname").read_text().strip() in ("alpha", "beta")
        pids = [m["pid"] for m in run.state["machines"].values()] + [run.state["proxy_pid"]]
        bridge = run.state["bridge"]
    except BaseException:
        run.down()
        raise
    run.down()
    assert run.leftovers() == []
    assert not any(os.path.exists("/proc/%d" % pid) for pid in pids)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert bridge not in links and "vb-t" + bridge[3:] not in links
    assert str(tmp_path) not in open("/proc/self/mountinfo").read()
    assert not (tmp_path / "run").exists()
