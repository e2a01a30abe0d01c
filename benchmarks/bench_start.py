"""Endpoint start with many volumes: time to ready, and what reading the volumes' metadata costs.

Everything runs locally: vcsim and the endpoint process. It creates N volumes through the
endpoint (the Docker SDK, a few threads at once), kills the endpoint (kill -9) and starts it
again on the same ports: seconds until its ready line, the SOAP calls and datastore HTTP
requests its start made, and whether ``docker volume ls`` is the same as before. Side by side,
in the same run, the peer: the same metadata files read each over a connection of its own (how
the endpoint read them before its datastore reads shared one kept-alive connection per thread).

    python3 benchmarks/bench_start.py [--volumes 1000]
"""

import argparse
import collections
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / ".build" / "collections"
sys.path[:0] = [str(COLLECTIONS)]
# The endpoint process imports the collection the same way.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))
# requests lets these override the CA a Docker SDK client is given (psf/requests#3829).
os.environ.pop("REQUESTS_CA_BUNDLE", None)
os.environ.pop("CURL_CA_BUNDLE", None)

from ansible_collections.vic.containers.tools.harness.vcsim import Simulator  # noqa: E402
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy, sdk, sdk_in_parallel, timed  # noqa: E402
from ansible_collections.vic.containers.plugins.module_utils.vsphere import datastore  # noqa: E402
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session  # noqa: E402

NAME = "bench-start"
# Where the harness's deploy puts the VCH's default volume store.
DATACENTER, DATASTORE = "DC0", "LocalDS_0"
WORKERS = 8


def create_volumes(vch, count):
    return sdk_in_parallel(vch, count, lambda client, index: client.api.create_volume(
        "vol-%05d" % index, labels={"n": str(index)}), WORKERS)


def volume_names(vch):
    client = sdk(vch)
    try:
        return sorted((v["Name"], tuple(sorted((v.get("Labels") or {}).items())))
                      for v in client.api.volumes()["Volumes"])
    finally:
        client.close()


def metadata_files(calls):
    """The datastore paths of the volume metadata files the endpoint read (the call log keeps no query)."""
    return [c["path"].split("/folder/", 1)[1] for c in calls
            if c.get("http") == "GET" and c["path"].endswith(".json")]


def fresh_connection_reads(sim, paths):
    """Seconds to read each file over a connection of its own (the peer)."""
    with Session(sim.host, sim.username, sim.password, sim.port, validate_certs=False) as session:
        start = time.perf_counter()
        for path in paths:
            if datastore.download(session, DATACENTER, DATASTORE, path) is None:
                raise RuntimeError("%s is gone" % path)
            session.forget_connection()
        return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, Simulator() as sim:
        sim.start()
        certs = Path(scratch) / "certs"
        deploy(sim, NAME, certs)
        endpoint = Endpoint(sim, NAME)
        vch = {"certs": certs, "host": "tcp://127.0.0.1:%d" % endpoint.port}
        try:
            made = create_volumes(vch, args.volumes)
            before = volume_names(vch)
            endpoint.kill()
            mark = sim.mark()
            ready, endpoint = timed(lambda: Endpoint(sim, NAME, port=endpoint.port, tether_port=endpoint.tether_port))
            calls = sim.calls_since(mark)
            after = volume_names(vch)
        finally:
            endpoint.stop()
        gets = [c for c in calls if c.get("http") == "GET"]
        metadata = metadata_files(calls)
        peer = fresh_connection_reads(sim, metadata)
    soap = collections.Counter(c["method"] for c in calls if "method" in c)
    print("\n%d volumes created through the endpoint in %.1f s" % (args.volumes, made))
    print("endpoint start (kill -9, then started again): ready in %.2f s" % ready)
    print("  SOAP calls: %d (%s)" % (sum(soap.values()), ", ".join("%s %d" % kv for kv in soap.most_common())))
    print("  datastore HTTP GETs: %d (%d volume metadata files)" % (len(gets), len(metadata)))
    print("  docker volume ls after the restart equals before: %s" % ("yes" if after == before else "NO"))
    print("\nreading the %d metadata files, one connection each (the peer): %.2f s" % (len(metadata), peer))
    return 0 if after == before and len(before) == args.volumes else 1


if __name__ == "__main__":
    sys.exit(main())
