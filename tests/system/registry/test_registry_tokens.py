"""Token auth end to end: what each kind of caller may do, enforced by Distribution itself with the
tokens the service issues (one table, every cell), and tokens Distribution must refuse."""

import base64
import hashlib
import http.client
import json
import os
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.vic.containers.services.registry.tokens import libtrust_kid
from ansible_collections.vic.containers.tools.harness.vic_registry import (
    ADMIN, ISSUER, PASSWORD, SERVICE, add_member, make_project, make_user, push
)

ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
# Members of both projects, by Harbor role id; "nonmember" has an account and no role.
ROLES = {"padmin": 1, "maint": 4, "dev": 2, "guest": 3, "lguest": 5}
Y, N = True, False
# caller -> action -> (allowed on the public project, allowed on the private one): written out, not derived.
MATRIX = {
    "sysadmin": {"pull": (Y, Y), "push": (Y, Y), "delete": (Y, Y)},
    "padmin": {"pull": (Y, Y), "push": (Y, Y), "delete": (Y, Y)},
    "maint": {"pull": (Y, Y), "push": (Y, Y), "delete": (Y, Y)},
    "dev": {"pull": (Y, Y), "push": (Y, Y), "delete": (N, N)},
    "guest": {"pull": (Y, Y), "push": (N, N), "delete": (N, N)},
    "lguest": {"pull": (Y, Y), "push": (N, N), "delete": (N, N)},
    "nonmember": {"pull": (Y, N), "push": (N, N), "delete": (N, N)},
    "anonymous": {"pull": (Y, N), "push": (N, N), "delete": (N, N)},
}
CELLS = [(caller, action, public) for caller, row in MATRIX.items() for action in row for public in (True, False)]
MISSING = "sha256:" + "0" * 64
# Every test runs against both stores the service supports (conftest.py).
DATABASES = ("sqlite", "postgresql")
# What a client asks for to do an action (Distribution wants pull with push: an upload reads too).
SCOPE = {"pull": ["pull"], "push": ["pull", "push"], "delete": ["delete"]}


@pytest.fixture(scope="module")
def world(registry, images):
    make_project(registry, "pub", public=True)
    make_project(registry, "priv", public=False)
    for user in list(ROLES) + ["nonmember"]:
        make_user(registry, user)
    for user, role in ROLES.items():
        add_member(registry, "pub", user, role)
        add_member(registry, "priv", user, role)
    for project in ("pub", "priv"):
        code, err = push(registry, images, "busybox", "%s/app:latest" % project)
        assert code == 0, err
    return registry


def credentials(caller):
    return {"sysadmin": ADMIN, "anonymous": None}.get(caller, (caller, PASSWORD))


def distribution(registry, method, path, token):
    """The status Distribution (through the service) answers ``method path`` with ``token``."""
    request = urllib.request.Request(registry.url + path, method=method, headers={"Accept": ACCEPT})
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        # An upload a push cell opens is left to Distribution's purge of stale uploads (cancelling it
        # would need the delete action).
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def attempt(registry, token, action, repository):
    """Whether Distribution lets ``token`` do ``action`` on ``repository`` (nothing is changed: the delete
    names a manifest that does not exist, so allowed means 404, refused 401)."""
    if action == "pull":
        return distribution(registry, "GET", "/v2/%s/manifests/latest" % repository, token) == 200
    if action == "push":
        return distribution(registry, "POST", "/v2/%s/blobs/uploads/" % repository, token) == 202
    status = distribution(registry, "DELETE", "/v2/%s/manifests/%s" % (repository, MISSING), token)
    assert status in (401, 404), status
    return status == 404


@pytest.mark.parametrize("caller,action,public", CELLS,
                         ids=["%s-%s-%s" % (c, a, "public" if p else "private") for c, a, p in CELLS])
def test_rbac_matrix(world, caller, action, public):
    repository = ("pub" if public else "priv") + "/app"
    status, answer = world.token(credentials(caller), ["repository:%s:%s" % (repository, ",".join(SCOPE[action]))])
    assert status == 200
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    column = 0 if public else 1
    expected = MATRIX[caller][action][column]
    assert claims["access"] == [{"type": "repository", "name": repository,
                                 "actions": [a for a in SCOPE[action] if MATRIX[caller][a][column]]}]
    assert attempt(world, answer["token"], action, repository) is expected


def test_token_claims_and_login_flow(world):
    # docker login: GET /v2/ answers the Bearer challenge naming our realm, then a token with no scope.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(world.url + "/v2/", timeout=10)
    assert refused.value.code == 401
    challenge = refused.value.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer realm=\"%s/service/token\"" % world.url)
    assert 'service="%s"' % SERVICE in challenge
    status, answer = world.token(("dev", PASSWORD))
    assert status == 200 and distribution(world, "GET", "/v2/", answer["token"]) == 200
    header = jwt.get_unverified_header(answer["token"])
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    key = serialization.load_pem_private_key(world.key_path.read_bytes(), password=None)
    assert header["alg"] == "RS256" and header["kid"] == libtrust_kid(key.public_key())
    assert claims["aud"] == SERVICE and claims["iss"] == ISSUER and claims["sub"] == "dev"
    assert claims["exp"] - claims["iat"] == answer["expires_in"] == 300 and claims["access"] == []
    assert world.token(("dev", "wrong-password"))[0] == 401
    assert world.token(("nobody", PASSWORD))[0] == 401
    # "*" is what the caller holds; the catalog only for the system admin.
    _status, answer = world.token(("dev", PASSWORD), ["repository:priv/app:*", "registry:catalog:*"])
    access = jwt.decode(answer["token"], options={"verify_signature": False})["access"]
    assert [entry["actions"] for entry in access] == [["pull", "push"], []]


def _signed(key, kid, **overrides):
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "admin", "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
              "jti": secrets.token_hex(8), "access": [{"type": "repository", "name": "priv/app", "actions": ["pull"]}]}
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_bad_tokens_are_refused(world):
    key = serialization.load_pem_private_key(world.key_path.read_bytes(), password=None)
    kid = libtrust_kid(key.public_key())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pull = "/v2/priv/app/manifests/latest"
    # The control: the same construction with the right key, audience and time is accepted.
    assert distribution(world, "GET", pull, _signed(key, kid)) == 200
    past = int(time.time()) - 7200
    assert distribution(world, "GET", pull, _signed(key, kid, exp=past + 3600, nbf=past, iat=past)) == 401
    assert distribution(world, "GET", pull, _signed(key, kid, aud="another-service")) == 401
    assert distribution(world, "GET", pull, _signed(key, kid, aud=[SERVICE, "x"])) == 401
    assert distribution(world, "GET", pull, _signed(key, kid, iss="someone-else")) == 401
    assert distribution(world, "GET", pull, _signed(other, kid)) == 401  # wrong key under our kid
    assert distribution(world, "GET", pull, _signed(other, libtrust_kid(other.public_key()))) == 401
    # Forged: a guest's real token with the claims widened keeps a signature that no longer matches.
    _status, answer = world.token(("guest", PASSWORD), ["repository:priv/app:pull,push"])
    head, payload, signature = answer["token"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["access"][0]["actions"] == ["pull"]
    claims["access"][0]["actions"] = ["pull", "push"]
    forged = ".".join([head, base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), signature])
    assert distribution(world, "POST", "/v2/priv/app/blobs/uploads/", forged) == 401
    # Replayed scope: a token for one repository is no key to another.
    _status, answer = world.token(("dev", PASSWORD), ["repository:pub/app:pull,push"])
    assert distribution(world, "GET", "/v2/pub/app/manifests/latest", answer["token"]) == 200
    assert distribution(world, "GET", pull, answer["token"]) == 401
    assert distribution(world, "POST", "/v2/priv/app/blobs/uploads/", answer["token"]) == 401


def test_blobs_sent_from_storage_obey_tokens(world, images):
    """Pulls of blobs are sent from Distribution's files by the service; the token and the repository's
    link to the blob are checked as Distribution checks them."""
    layer = images["busybox"].layers[0]
    path = "/v2/priv/app/blobs/" + layer["digest"]
    _status, answer = world.token(("guest", PASSWORD), ["repository:priv/app:pull"])
    request = urllib.request.Request(world.url + path, headers={"Authorization": "Bearer " + answer["token"]})
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
        assert response.headers["Docker-Content-Digest"] == layer["digest"]
        assert response.headers["Last-Modified"]  # the service's file answer (Distribution sends none)
    assert len(body) == layer["size"] and "sha256:" + hashlib.sha256(body).hexdigest() == layer["digest"]
    request.add_header("Range", "bytes=10-19")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 206 and response.read() == body[10:20]
    # Another repository's token, a nonmember's, none at all: Distribution answers, and refuses.
    _status, other = world.token(("guest", PASSWORD), ["repository:pub/app:pull"])
    _status, outsider = world.token(("nonmember", PASSWORD), ["repository:priv/app:pull"])
    for token in (other["token"], outsider["token"], None):
        assert distribution(world, "GET", path, token) == 401
    # A repository the blob is not linked into: Distribution's 404, not the file.
    _status, empty = world.token(ADMIN, ["repository:pub/none:pull"])
    assert distribution(world, "GET", "/v2/pub/none/blobs/" + layer["digest"], empty["token"]) == 404


def test_uploads_relay_every_byte(world):
    """A blob upload with a length (as skopeo and Docker send it, read in pieces by the service) and one
    in HTTP chunks (no length) both reach Distribution whole through the service (Distribution checks
    the digest when the upload is closed), and the keep-alive connection they came on serves the next
    requests at once (the socket's low-water mark the service sets while it reads an upload is down to
    one byte once the body is in)."""
    _status, answer = world.token(("dev", PASSWORD), ["repository:priv/upload:pull,push"])
    auth = {"Authorization": "Bearer " + answer["token"]}
    connection = http.client.HTTPConnection(world.host, timeout=30)

    def call(method, url, body=None, headers=None):
        connection.request(method, urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl(), body=body,
                           headers=dict(auth, **(headers or {})), encode_chunked=not isinstance(body, (bytes, type(None))))
        response = connection.getresponse()
        return response, response.read()
    try:
        for chunked in (False, True):
            # Uneven pieces, some larger than what the service reads at once, and a last one smaller.
            pieces = [os.urandom(size) for size in (1, 300 << 10, 5 << 20, 17, 70 << 10)]
            body = b"".join(pieces)
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            response, _data = call("POST", "/v2/priv/upload/blobs/uploads/")
            assert response.status == 202
            response, _data = call("PATCH", response.headers["Location"], iter(pieces) if chunked else body,
                                   {"Content-Type": "application/octet-stream"})
            assert response.status == 202 and response.headers["Range"] == "0-%d" % (len(body) - 1), chunked
            response, _data = call("PUT", response.headers["Location"] + "&digest=" + digest)
            assert response.status == 201, chunked
            response, data = call("GET", "/v2/priv/upload/blobs/" + digest)
            assert response.status == 200 and data == body
    finally:
        connection.close()
