# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What working out the names each container resolves costs the endpoint (services/portlayer/network/peers.py).

Each batch of changes the live cache brings makes the endpoint compute every running container's peers from the
cache (no vSphere call) and send a ``hosts`` request to each tether whose peers changed. This prints, for VCHs of
N running containers (each on one of a few user-defined networks and half of them on a second one, with two
aliases each): the CPU time of one such computation for all of them, the largest request (bytes on the tether
channel, whose limit is 64 KiB), and the bytes of all the requests of a batch in which every container's peers
changed (a start storm's worst batch).

    PYTHONPATH=.build/collections python3 benchmarks/bench_peers.py [--sizes 100,500,1000] [--networks 4]
"""

import argparse
import time

from ansible_collections.vic.containers.services.portlayer.containers.model import Container
from ansible_collections.vic.containers.services.portlayer.network.peers import PeerIndex
from ansible_collections.vic.containers.services.tether import protocol


def containers(count, networks):
    made = []
    for number in range(count):
        home = "net%d" % (number % networks)
        endpoints = {home: {"ip": "10.%d.%d.%d" % (number % networks, number // 250, number % 250 + 2),
                            "aliases": ["svc%d" % number, "role%d" % (number % 7)]}}
        if number % 2:
            endpoints["shared"] = {"ip": "10.200.%d.%d" % (number // 250, number % 250 + 2), "aliases": []}
        record = {"id": ("%064x" % (number + 1)), "name": "c%d" % number, "config": {}, "host_config": {},
                  "networks": endpoints}
        made.append(Container("vm-%d" % number, {"runtime.powerState": "poweredOn"}, record, {}))
    return made


def measure(count, networks):
    everyone = containers(count, networks)
    started = time.process_time()
    index = PeerIndex(everyone)
    all_entries = [index.entries(c) for c in index.running]
    cpu = time.process_time() - started
    sizes = [len(protocol.encode(dict(protocol.hosts_request(e), seq=1))) for e in all_entries]
    return cpu, max(sizes), sum(sizes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--sizes", default="100,500,1000")
    parser.add_argument("--networks", type=int, default=4)
    args = parser.parse_args()
    print("%10s %18s %22s %22s" % ("containers", "compute all (ms)", "largest request (B)", "a whole batch (KiB)"))
    for count in (int(n) for n in args.sizes.split(",")):
        try:
            cpu, largest, total = measure(count, args.networks)
        except protocol.ProtocolError as exc:
            print("%10d %s" % (count, exc))
            continue
        print("%10d %18.1f %22d %22.0f" % (count, cpu * 1000, largest, total / 1024))


if __name__ == "__main__":
    main()
