# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The application: state shared by the handlers, the routes, and serving until SIGTERM."""

import asyncio
import datetime
import logging
import os
import signal
import ssl

import aiohttp
import yaml
from aiohttp import web
from sqlalchemy import select, text

from ansible_collections.vic.containers.services.registry import (
    api_artifacts, api_projects, api_users, auth, errors, gc, notifications, proxy, replication, store, token_service,
    tokens
)
from ansible_collections.vic.containers.services.registry.views import PREFIX, STATE, answer, caller_of, iso

LOG = logging.getLogger(__name__)
VERSION = "v2.0.0-vic"
ADMIN = "admin"
DEFAULT_PROJECT = "default-project"
# Read buffers of the proxy (both sides): blobs move in pieces of up to this size, not aiohttp's 64 KiB
# (each piece costs a loop turn; a pull through the default ran at a third of the direct speed).
BUFFER = 4 << 20


class State:
    """What every handler shares: configuration, database sessions, the token signer, the password
    verifier and the HTTP client to Distribution."""

    def __init__(self, config, engine):
        self.config = config
        self.engine = engine
        self.sessions = store.sessions(engine)
        self.signer = tokens.Signer(config.token_key, config.token_issuer, config.token_service,
                                    config.token_expiry)
        self.verifier = auth.Verifier()
        self.scheme = "https" if config.tls_cert else "http"
        self.upstream = config.distribution_url
        secret_file = config.notify_secret_file
        self.notify_secret = secret_file.read_text().strip() if secret_file and secret_file.exists() else None
        self.http = None
        self.tasks = set()  # background jobs (garbage collection), kept referenced until done
        self.storage_root = readable_storage(config.distribution_config)

    async def start(self):
        # No decompression and no pool limit: the proxy relays bytes as they come, many at once.
        self.http = aiohttp.ClientSession(auto_decompress=False, connector=aiohttp.TCPConnector(limit=0),
                                          read_bufsize=BUFFER,
                                          timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
                                          skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"))

    async def stop(self):
        if self.http is not None:
            await self.http.close()

    async def distribution_delete(self, repository, digest):
        """Delete a manifest in Distribution with a token of the service's own; the HTTP status."""
        signed, _issued, _expires = self.signer.issue(ADMIN, [{"type": "repository", "name": repository,
                                                               "actions": ["delete"]}])
        async with self.http.delete("%s/v2/%s/manifests/%s" % (self.upstream, repository, digest),
                                    headers={"Authorization": "Bearer " + signed}) as response:
            return response.status


def readable_storage(distribution_config):
    """Distribution's storage root (pulls are sent from its files where this service may read them;
    Distribution makes the folder at its first write), or None when its config cannot be read."""
    try:
        return gc.storage_root(distribution_config)
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        return None


def ensure_defaults(sessions, admin_password_file):
    """The admin account and Harbor's public default project (``library`` in Harbor), once."""
    with sessions.begin() as session:
        admin = session.scalar(select(store.User).where(store.User.username == ADMIN))
        if admin is None:
            admin = store.User(username=ADMIN, sysadmin=True, realname="system admin", comment="")
            session.add(admin)
            session.flush()
        if admin.password_hash is None and admin_password_file and admin_password_file.exists():
            password = admin_password_file.read_text().strip()
            if password:
                admin.password_hash = auth.hash_password(password)
        if session.scalar(select(store.Project.id).limit(1)) is None:
            project = store.Project(name=DEFAULT_PROJECT, owner_id=admin.id, meta={"public": "true"},
                                    storage_limit=store.UNLIMITED)
            session.add(project)
            session.flush()
            session.add(store.Member(project_id=project.id, user_id=admin.id, role_id=1))


def set_admin_password(sessions, password):
    with sessions.begin() as session:
        admin = session.scalar(select(store.User).where(store.User.username == ADMIN))
        if admin.password_hash and auth.bcrypt.checkpw(password.encode(), admin.password_hash.encode()):
            return False
        admin.password_hash = auth.hash_password(password)
        return True


@web.middleware
async def api_middleware(request, handler):
    """Callers of the API are authenticated first; Harbor's error body for every API error."""
    if request.path.startswith(PREFIX):
        request["caller"] = await auth.authenticate(request.app[STATE], request)
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.content_type == "application/json" or not request.path.startswith(PREFIX):
            raise
        raise errors.error(error.status, error.reason) from error


async def health(request):
    state = request.app[STATE]
    components = []
    try:
        with state.sessions() as session:
            session.execute(text("SELECT 1"))
        components.append({"name": "database", "status": "healthy"})
    except Exception as error:  # pylint: disable=broad-except  # any failure is the answer
        components.append({"name": "database", "status": "unhealthy", "error": str(error)})
    try:
        async with state.http.get(state.upstream + "/v2/", timeout=aiohttp.ClientTimeout(total=5)) as response:
            ok = response.status in (200, 401)
        components.append({"name": "registry", "status": "healthy" if ok else "unhealthy"}
                          | ({} if ok else {"error": "answered %d" % response.status}))
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        components.append({"name": "registry", "status": "unhealthy", "error": str(error) or type(error).__name__})
    components.insert(0, {"name": "core", "status": "healthy"})
    healthy = all(c["status"] == "healthy" for c in components)
    return answer({"status": "healthy" if healthy else "unhealthy", "components": components},
                  status=200 if healthy else 503)


async def systeminfo(request):
    config = request.app[STATE].config
    caller = caller_of(request)
    info = {"with_notary": False, "with_chartmuseum": False, "auth_mode": "db_auth",
            "self_registration": False, "harbor_version": VERSION, "read_only": False,
            "current_time": iso(datetime.datetime.now(datetime.UTC)),
            "registry_url": config.external_url.split("://", 1)[-1], "external_url": config.external_url,
            "project_creation_restriction": "everyone", "has_ca_root": False,
            "registry_storage_provider_name": "filesystem"}
    if caller.anonymous:
        info = {key: info[key] for key in ("with_notary", "with_chartmuseum", "auth_mode", "self_registration",
                                           "harbor_version", "registry_url", "external_url")}
    return answer(info)


async def ping(_request):
    return web.Response(text="Pong")


def build(state):
    app = web.Application(middlewares=[api_middleware], client_max_size=1 << 20)
    app[STATE] = state
    app.router.add_routes([web.get(PREFIX + "/health", health), web.get(PREFIX + "/systeminfo", systeminfo),
                           web.get(PREFIX + "/ping", ping)])
    app.router.add_routes(api_projects.routes(PREFIX) + api_users.routes(PREFIX) + api_artifacts.routes(PREFIX)
                          + gc.routes(PREFIX) + replication.routes(PREFIX))
    app.router.add_get("/service/token", token_service.token)
    app.router.add_post("/service/notifications", notifications.notifications)
    app.router.add_route("*", "/v2/{tail:.*}", proxy.proxy)
    app.router.add_route("*", "/v2", proxy.proxy)

    async def lifecycle(_app):
        await state.start()
        yield
        await state.stop()
    app.cleanup_ctx.append(lifecycle)
    return app


def prepare(config):
    """Engine migrated and defaults in place: what ``serve`` and the CLI start from."""
    engine = store.engine_for(config.database_url)
    store.migrate(engine)
    ensure_defaults(store.sessions(engine), config.admin_password_file)
    return engine


async def serve(config, engine, reuse_port=False):
    """Serve until SIGTERM/SIGINT; prints one line when listening."""
    state = State(config, engine)
    runner = web.AppRunner(build(state), access_log=None, read_bufsize=BUFFER)
    await runner.setup()
    context = None
    if config.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(config.tls_cert, config.tls_key)
    site = web.TCPSite(runner, config.listen_host, config.listen_port, ssl_context=context, backlog=1024,
                       reuse_port=reuse_port or None)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("vic-registry listening on %s:%d (pid %d)" % (config.listen_host, config.listen_port, os.getpid()),
          flush=True)
    await stop.wait()
    await runner.cleanup()
    engine.dispose()


def run(config, engine):
    """Serve with ``config.workers`` processes sharing the port (SO_REUSEPORT): signing a token is CPU
    bound and one process uses one core. The first process forwards SIGTERM to the others and waits."""
    gc.interrupted(store.sessions(engine))
    engine.dispose()  # no pooled connection crosses a fork
    children = []
    for _number in range(config.workers - 1):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                asyncio.run(serve(config, engine, reuse_port=True))
                code = 0
            finally:
                os._exit(code)  # pylint: disable=protected-access  # a forked child never unwinds the parent's stack
        children.append(pid)
    try:
        asyncio.run(serve(config, engine, reuse_port=config.workers > 1))
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            os.waitpid(pid, 0)
