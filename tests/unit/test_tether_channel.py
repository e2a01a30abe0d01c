"""The endpoint's tether channel against a tether-side test peer, over real SSH on 127.0.0.1."""

import asyncio
import contextlib
import io
import os
import tarfile

import pytest
from ansible_collections.vic.containers.plugins.module_utils import _errors as errors
from ansible_collections.vic.containers.services.portlayer.attach import concentrator, sessions
from ansible_collections.vic.containers.services.portlayer.containers.model import Container
from ansible_collections.vic.containers.services.portlayer.network import peers
from ansible_collections.vic.containers.services.tether import protocol
from ansible_collections.vic.containers.tools.harness.tether_peer import TetherPeer
from ansible_collections.vic.containers.tools.harness.waiting import until_async

VCH_KEY = bytes(range(32))
TIMEOUT = 15


class World:
    """A concentrator with a registry of containers' host keys, and the exits it was told."""

    def __init__(self, **options):
        self.keys = {}
        self.exits = []
        self.starts = []
        self.exited = asyncio.Event()
        self.client_key = concentrator.endpoint_client_key(VCH_KEY)
        self.concentrator = concentrator.Concentrator(self.keys.get, self.client_key, self._on_exit,
                                                      on_started=self._on_started, **options)
        self.port = None

    def _on_started(self, container_id, pid, started_at):
        self.starts.append((container_id, pid, started_at))

    async def _on_exit(self, container_id, code, finished_at):
        self.exits.append((container_id, code, finished_at))
        self.exited.set()

    def container(self, container_id):
        private, public = protocol.new_host_key()
        self.keys[container_id] = public
        return private

    def peer(self, container_id, argv, host_key=None, endpoint_key=None, **options):
        host_key = host_key or self.container(container_id)
        endpoint_key = endpoint_key or protocol.public_key_text(self.client_key)
        return TetherPeer(container_id, host_key, endpoint_key, argv, **options)

    async def wait_exit(self):
        await asyncio.wait_for(self.exited.wait(), TIMEOUT)
        self.exited.clear()
        return self.exits[-1]


@contextlib.asynccontextmanager
async def world(**options):
    w = World(**options)
    await w.concentrator.start("127.0.0.1", 0)
    w.port = int(w.concentrator.serial_uri.rsplit(":", 1)[1])
    try:
        yield w
    finally:
        await w.concentrator.stop()


@contextlib.asynccontextmanager
async def running(w, peer, port=None):
    await peer.start("127.0.0.1", port or w.port)
    try:
        yield peer
    finally:
        await peer.stop()


async def collect(attachment):
    out, err = b"", b""
    async for stream, data in attachment:
        if stream == protocol.STDERR:
            err += data
        else:
            out += data
    return out, err


def sh(script):
    return ["/bin/sh", "-c", script]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


# -- keys ----------------------------------------------------------------------------------------


def test_client_key_is_derived_from_the_vch_key():
    first = concentrator.endpoint_client_key(VCH_KEY)
    again = concentrator.endpoint_client_key(bytes(VCH_KEY))
    other = concentrator.endpoint_client_key(os.urandom(32))
    assert protocol.public_key_text(first) == protocol.public_key_text(again)
    assert protocol.public_key_text(first) != protocol.public_key_text(other)
    assert protocol.public_key_text(first).startswith("ssh-ed25519 ")
    with pytest.raises(ValueError):
        concentrator.endpoint_client_key(b"short")


def test_new_host_keys_are_ed25519_and_distinct():
    private, public = protocol.new_host_key()
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public.startswith("ssh-ed25519 ") and "\n" not in public
    assert protocol.new_host_key()[1] != public


def test_signal_names():
    assert sessions.signal_name("SIGTERM") == "TERM"
    assert sessions.signal_name("kill") == "KILL"
    assert sessions.signal_name(1) == "HUP"
    assert sessions.signal_name("15") == "TERM"
    with pytest.raises(errors.InvalidInput):
        sessions.signal_name("SIGNOPE")


def test_announced_id():
    assert protocol.announced_id("SSH-2.0-VICTether_1 abc123") == "abc123"
    assert protocol.announced_id("SSH-2.0-OpenSSH_9.2") is None
    assert protocol.announced_id(None) is None


# -- sessions -------------------------------------------------------------------------------


def test_attach_splits_stdout_and_stderr_and_gets_the_exit_code():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh("echo out; echo err >&2; exit 7"), wait_for_attach=True)
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                attachment = await w.concentrator.attach("c1")
                output = await collect(attachment)
                code = await attachment.exit_code()
                exit_report = await w.wait_exit()
        return output, code, exit_report

    (out, err), code, (container_id, reported, finished_at) = run(scenario())
    assert (out, err) == (b"out\n", b"err\n")
    assert code == 7
    assert (container_id, reported) == ("c1", 7) and finished_at.endswith("Z")


def test_stdin_reaches_the_process():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh('read line; echo "got:$line"; cat'), wait_for_attach=True)
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                attachment = await w.concentrator.attach("c1", stdin=True)
                await attachment.write_stdin(b"hello\n")
                await attachment.write_stdin(b"rest of stdin")
                attachment.close_stdin()  # cat ends at EOF
                output = await collect(attachment)
                return output, await attachment.exit_code()

    (out, err), code = run(scenario())
    assert out == b"got:hello\nrest of stdin" and err == b""
    assert code == 0


def test_tty_attach_has_a_terminal_and_follows_resizes():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh("read go; stty size; read go; stty size"), wait_for_attach=True, tty=True)
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                attachment = await w.concentrator.attach("c1", tty=True, stdin=True, term_size=(100, 30))
                await attachment.write_stdin(b"a\n")
                before = b""
                while b"30 100" not in before:
                    before += (await attachment.read())[1]
                attachment.resize(40, 120)
                await attachment.write_stdin(b"b\n")
                after, err = await collect(attachment)
                return before, after, err, await attachment.exit_code()

    before, after, err, code = run(scenario())
    assert b"30 100\r\n" in before and b"40 120\r\n" in after
    assert err == b"" and code == 0


def test_signal_ends_the_process_and_the_exit_is_reported_unattached(tmp_path):
    trapped = tmp_path / "trapped"

    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh("trap 'echo bye; exit 3' TERM; : > %s; while :; do sleep 0.05; done" % trapped))
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                await until_async(trapped.exists, "sh to install its TERM trap")
                await w.concentrator.signal("c1", "SIGTERM")
                first = await w.wait_exit()
            peer = w.peer("c2", ["sleep", "30"])
            async with running(w, peer):
                await w.concentrator.wait_connected("c2", TIMEOUT)
                await w.concentrator.signal("c2", "KILL")
                second = await w.wait_exit()
                with pytest.raises(errors.Conflict, match="not running"):
                    await w.concentrator.signal("c2", "TERM")
        return first, second

    first, second = run(scenario())
    assert first[:2] == ("c1", 3)
    assert second[:2] == ("c2", 137)


def test_exit_before_the_connection_is_reported_once_connected_and_once_only():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh("exit 5"), redial_delay=0.05)
            await peer.start("127.0.0.1", 1)  # nothing listens there: the process runs, the tether keeps dialing
            await peer.primary.done.wait()
            await peer.stop()
            peer._task = None  # pylint: disable=protected-access
            kinds = []

            async def follow():
                async for event in w.concentrator.events():
                    kinds.append(event.kind)
            follower = asyncio.ensure_future(follow())  # subscribed by its first step, long before a connect
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                report = await w.wait_exit()
                peer.drop()  # the redialed connection says hello and repeats the exit
                await until_async(lambda: kinds.count("connect") >= 2, "the tether's redialed connection")
                # The peer answers on the control session after the exit it repeated, so once the answer is
                # in, the repeat has been read: a second report would be in w.exits by now.
                with pytest.raises(errors.Conflict, match="the process is not running"):
                    await w.concentrator.signal("c1", "TERM")
                follower.cancel()
                return report, len(w.exits), peer.connections

    report, reports, connections = run(scenario())
    assert report[:2] == ("c1", 5)
    assert connections >= 2 and reports == 1


def test_exec_returns_output_and_exit_code():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", ["sleep", "30"])
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                spec = {"Cmd": ["/bin/sh", "-c", 'echo "$FOO"; pwd; echo oops >&2; exit 4'],
                        "Env": ["FOO=bar"], "WorkingDir": "/tmp"}
                attachment = await w.concentrator.exec("c1", spec)
                output = await collect(attachment)
                code = await attachment.exit_code()
                with pytest.raises(errors.InvalidInput):
                    await w.concentrator.exec("c1", {"Cmd": "not a list"})
                return output, code

    (out, err), code = run(scenario())
    assert out == b"bar\n/tmp\n" and err == b"oops\n"
    assert code == 4


def test_a_tether_that_does_not_know_the_hosts_op_refuses_it_and_everything_else_goes_on(caplog):
    # Tethers on an ISO built before the op answer "unknown op" (as this peer does): the endpoint logs it.
    asked = []

    def hosts_of(container_id):
        asked.append(container_id)
        return [("10.1.0.2", ["db"])]

    async def scenario():
        async with world(hosts_of=hosts_of) as w:
            peer = w.peer("c1", ["sleep", "30"])
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                taken = await w.concentrator.send_hosts("c1", [("10.1.0.3", ["web"])])
                attachment = await w.concentrator.exec("c1", {"Cmd": ["/bin/sh", "-c", "echo fine"]})
                output = await collect(attachment)
                return taken, output, await w.concentrator.send_hosts("gone", [])

    taken, output, unknown = run(scenario())
    assert asked == ["c1"] and taken is False and unknown is False
    assert output == (b"fine\n", b"")
    assert "its peers were not taken: container c1: unknown op 'hosts'" in caplog.text


class PortLayerParts:
    """What ``peers.Publisher`` reads of the port layer: the live cache's listeners (``change`` is a feed batch
    the cache applied), the containers it decoded, the concentrator, and a place for background work."""

    def __init__(self):
        self.cache = self.containers = self
        self.tether = None
        self.decoded = []
        self._listeners = []

    def listen(self, callback):
        self._listeners.append(callback)

    def known(self):
        return list(self.decoded)

    def spawn(self, coroutine):
        return asyncio.ensure_future(coroutine)

    def change(self, decoded):
        self.decoded = list(decoded)
        for callback in self._listeners:
            callback("vm-1", {}, {})


def _running(name, network, address):
    record = {"id": name * 8, "name": name, "config": {}, "host_config": {},
              "networks": {network: {"ip": address, "aliases": []}}}
    return Container("vm-" + name, {"runtime.powerState": "poweredOn"}, record, {})


def test_peers_go_on_each_connection_and_a_burst_of_changes_goes_in_one_request():
    me = _running("c1", "app", "10.1.0.2")
    others = [_running("p%02d" % n, "app", "10.1.0.%d" % (n + 10)) for n in range(30)]
    stranger = _running("zz", "elsewhere", "10.9.0.2")
    taken = []

    async def scenario():
        parts = PortLayerParts()
        publisher = peers.Publisher(parts)
        async with world(hosts_of=publisher.entries_for) as w:
            parts.tether = w.concentrator
            parts.change([me])
            peer = w.peer(me.id, ["sleep", "30"], hosts=taken)
            async with running(w, peer):
                await w.concentrator.wait_connected(me.id, TIMEOUT)
                await until_async(lambda: len(taken) == 1, "the peers of the connection")
                for count in range(1, len(others) + 1):     # 30 starts, one batch of the cache each
                    parts.change([me] + others[:count])
                await until_async(lambda: taken[-1:] == [[(o.record["networks"]["app"]["ip"], [o.name, o.id[:12]])
                                                          for o in others]], "the peers after the burst")
                parts.change([me, stranger] + others)       # not on its network: nothing to send
                await asyncio.sleep(peers.BATCH_SECONDS * 3)
                assert len(taken) == 2, taken               # one request for the connection, one for the burst
                peer.drop()                                 # a new connection is given them again
                await until_async(lambda: len(taken) == 3, "the peers of the second connection")
                return list(taken)

    sent = run(scenario())
    assert sent[0] == [] and sent[2] == sent[1] and len(sent[1]) == 30


def test_not_connected_is_a_clear_conflict():
    async def scenario():
        async with world() as w:
            assert not w.concentrator.connected("nope")
            for call in (w.concentrator.attach("nope"), w.concentrator.signal("nope", "TERM"),
                         w.concentrator.exec("nope", {"Cmd": ["true"]})):
                with pytest.raises(errors.Conflict, match="container nope is not running"):
                    await call
            with pytest.raises(errors.VicError, match="did not connect"):
                await w.concentrator.wait_connected("nope", 0.2)

    run(scenario())


def test_the_endpoint_speaks_only_after_the_tether():
    # A VM's serial port dials at power-on, long before the guest opens the line: what the endpoint
    # sent then would be lost, so it waits for the tether's version before its own.
    async def scenario():
        async with world() as w:
            reader, writer = await asyncio.open_connection("127.0.0.1", w.port)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.5)
            writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
            line = await asyncio.wait_for(reader.readline(), TIMEOUT)
            writer.close()
            return line

    assert run(scenario()).startswith(b"SSH-2.0-")


# -- trust --------------------------------------------------------------------------------------


def test_wrong_host_key_or_another_containers_id_is_refused():
    async def scenario():
        async with world() as w:
            w.container("c1")
            impostor_key = protocol.new_host_key()[0]
            own_key_of_c2 = w.container("c2")
            peers = [
                w.peer("c1", ["sleep", "30"], host_key=impostor_key),          # claims c1 without c1's key
                w.peer("c2", ["sleep", "30"], host_key=own_key_of_c2, announce="c1"),  # c2's key, says c1
                w.peer("c3", ["sleep", "30"], host_key=impostor_key),          # a container nobody created
            ]
            for peer in peers:
                await peer.start("127.0.0.1", w.port)
            try:
                await until_async(lambda: all(p.refused for p in peers), "every impostor's handshake to fail")
                return [w.concentrator.connected(cid) for cid in ("c1", "c2", "c3")], [p.refused for p in peers]
            finally:
                for peer in peers:
                    await peer.stop()

    connected, refused = run(scenario())
    assert connected == [False, False, False]
    assert all(count >= 1 for count in refused)


def test_tether_refuses_an_endpoint_of_another_vch():
    async def scenario():
        async with world() as w:
            stranger = protocol.public_key_text(concentrator.endpoint_client_key(os.urandom(32)))
            peer = w.peer("c1", ["sleep", "30"], endpoint_key=stranger)
            async with running(w, peer):
                await until_async(lambda: peer.refused, "the tether to refuse the stranger's handshake")
                return w.concentrator.connected("c1"), peer.connections

    assert run(scenario()) == (False, 0)


def test_reconnect_replaces_the_old_connection_and_disconnects_are_events():
    async def scenario():
        async with world() as w:
            host_key = w.container("c1")
            events = []

            async def follow():
                async for event in w.concentrator.events():
                    events.append(event)

            follower = asyncio.ensure_future(follow())
            first = w.peer("c1", ["sleep", "30"], host_key=host_key)
            second = w.peer("c1", ["sleep", "30"], host_key=host_key, redial_delay=30)
            async with running(w, first):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                first_conn = first.conn
                first._task.cancel()  # pylint: disable=protected-access  # keep it from redialing
                async with running(w, second):
                    await asyncio.wait_for(first_conn.wait_closed(), TIMEOUT)
                    assert w.concentrator.connected("c1")
                    attachment = await w.concentrator.exec("c1", {"Cmd": ["echo", "via second"]})
                    out = (await collect(attachment))[0]
                await until_async(lambda: "disconnect" in [e.kind for e in events],
                                  "the disconnect of the second connection")
                still = w.concentrator.connected("c1")
            follower.cancel()
            return out, still, events

    out, still, events = run(scenario())
    assert out == b"via second\n"
    assert not still
    assert [e.kind for e in events] == ["connect", "connect", "disconnect"]
    assert {e.container_id for e in events} == {"c1"}


class _Blackhole:
    """A TCP relay that can stop passing bytes without closing: a dead link, as keep-alives see it."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.open = True
        self.server = None
        self.writers = []

    async def start(self):
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _relay(self, reader, writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [writer, up_writer]

        async def pipe(src, dst):
            while True:
                data = await src.read(65536)
                if not data:
                    break
                if self.open:
                    dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    async def stop(self):
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


def test_keepalive_notices_a_dead_connection():
    async def scenario():
        async with world(keepalive_interval=0.2, keepalive_count_max=2) as w:
            relay = _Blackhole(w.port)
            relay_port = await relay.start()
            peer = w.peer("c1", ["sleep", "30"], redial_delay=30)
            try:
                async with running(w, peer, relay_port):
                    await w.concentrator.wait_connected("c1", TIMEOUT)
                    relay.open = False
                    await until_async(lambda: not w.concentrator.connected("c1"),
                                      "keep-alives to find the link dead")
            finally:
                await relay.stop()

    run(scenario())


# -- started, stats, archives -----------------------------------------------------------------------


def test_started_is_reported_with_the_pid_and_again_after_a_redial():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", ["sleep", "30"])
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                await until_async(lambda: w.starts, "the started report")
                first = list(w.starts)
                peer.drop()
                await until_async(lambda: len(w.starts) >= 2, "the started report after the redial")
                return first, w.starts[1], peer.primary.pid

    first, again, pid = run(scenario())
    assert first[0][:2] == ("c1", pid) and first[0][2].endswith("Z")
    assert again == first[0]


def test_stats_are_the_guests_figures():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30"))
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                first = await w.concentrator.stats("c1")
                await asyncio.sleep(0.3)
                second = await w.concentrator.stats("c1")
                return first, second

    first, second = run(scenario())
    assert set(first) == {"cpu_total_ns", "cpu_system_ns", "online_cpus", "memory_usage", "memory_limit", "pids"}
    assert second["cpu_total_ns"] > 0 and second["cpu_total_ns"] >= first["cpu_total_ns"]
    assert second["cpu_system_ns"] > first["cpu_system_ns"]
    assert 0 < second["memory_usage"] < second["memory_limit"] and second["online_cpus"] >= 1


def _tar(**files):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return data.getvalue()


def test_a_maintenance_boots_tether_serves_archives_and_is_no_runs(tmp_path):
    (tmp_path / "f").write_bytes(b"kept\n")

    async def scenario():
        async with world() as w:
            peer = w.peer("c1", ["sleep", "30"], root=str(tmp_path), wait_for_attach=True, maintenance=True)
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT, maintenance=True)
                run_link = w.concentrator.connected("c1")
                with pytest.raises(errors.Conflict, match="is not running"):
                    await w.concentrator.attach("c1")
                with pytest.raises(errors.Conflict, match="is not running"):
                    await w.concentrator.archive("c1", protocol.archive_request("stat", "/f"))
                session = await w.concentrator.archive("c1", protocol.archive_request("stat", "/f"), maintenance=True)
                stat = await session.result()
                session.close()
        return run_link, stat

    run_link, stat = run(scenario())
    assert run_link is False
    assert stat["name"] == "f" and stat["size"] == 5


def test_archive_stat_get_and_put_through_the_tether(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hostname").write_bytes(b"box\n")
    (tmp_path / "tmp").mkdir()

    async def scenario():
        async with world() as w:
            peer = w.peer("c1", ["sleep", "30"], root=str(tmp_path))
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                session = await w.concentrator.archive("c1", protocol.archive_request("stat", "/etc"))
                stat = await session.result()
                session.close()
                session = await w.concentrator.archive("c1", protocol.archive_request("get", "/etc/hostname"))
                got_stat = await session.result()
                data = b""
                while chunk := await session.read():
                    data += chunk
                session.close()
                session = await w.concentrator.archive("c1", protocol.archive_request("put", "/tmp"))
                await session.write(_tar(f=b"x\n"))
                await session.finish()
                session.close()
                missing = await w.concentrator.archive("c1", protocol.archive_request("get", "/nope"))
                with pytest.raises(errors.NotFound):
                    await missing.result()
                missing.close()
                into_file = await w.concentrator.archive("c1", protocol.archive_request("put", "/etc/hostname"))
                await into_file.write(_tar(g=b"y"))
                with pytest.raises(errors.InvalidInput):
                    await into_file.finish()
                into_file.close()
                return stat, got_stat, data

    stat, got_stat, data = run(scenario())
    assert stat["name"] == "etc" and stat["mode"] & (1 << 31)
    assert got_stat["name"] == "hostname" and got_stat["size"] == 4
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        assert archive.getnames() == ["hostname"]
        assert archive.extractfile("hostname").read() == b"box\n"
    assert (tmp_path / "tmp" / "f").read_bytes() == b"x\n"
    assert not (tmp_path / "etc" / "g").exists()


def test_a_boot_spec_configures_the_peer():
    private, _public = protocol.new_host_key()
    endpoint_key = protocol.public_key_text(concentrator.endpoint_client_key(VCH_KEY))
    process = {"Cmd": ["sh", "-c", "true"], "Env": ["A=b"], "RunBlock": True, "Tty": True}
    spec = protocol.boot_spec("c1", private, endpoint_key, process, hostname="c1", layers=[0], rw=1)
    peer = TetherPeer.from_boot_spec(spec)
    assert (peer.container_id, peer.argv, peer.wait_for_attach, peer.tty) == ("c1", ["sh", "-c", "true"], True, True)
    assert peer.env["A"] == "b" and peer.env["PATH"] == os.environ["PATH"]


def test_a_run_block_process_starts_after_the_grace_with_nobody_attached():
    async def scenario():
        async with world() as w:
            peer = w.peer("c1", sh("exit 6"), wait_for_attach=True, run_block_grace=0.2)
            async with running(w, peer):
                await w.concentrator.wait_connected("c1", TIMEOUT)
                return await w.wait_exit()

    assert run(scenario())[:2] == ("c1", 6)
