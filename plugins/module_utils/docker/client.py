# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The Docker Engine API client of the Docker modules: the Docker SDK for Python, errors as one sentence; private.

Every failure the engines see is a ``DockerError`` (a ``VicError``) whose message
names the Docker host: an unreachable host, a certificate either side refused,
an API error with the daemon's own words. ``NotFound`` comes from an inspect of
something missing, so that an engine tells "absent" from "broken".

``api_version: auto`` is negotiated without a ``GET /version`` of its own: the
first request goes to the unversioned path (served at the daemon's own version)
and its ``Api-Version`` header fixes the version of the requests that follow, so
an unchanged object costs only the inspects it needs.
"""

from __future__ import annotations

import json
import re

from ansible_collections.vic.containers.plugins.module_utils._errors import Conflict, NotFound, VicError

try:
    import docker
    import requests
    from docker import errors as docker_errors
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by docker_args with missing_required_lib
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = exc
    docker = requests = docker_errors = None

# The oldest API whose create body carries every option the engines send (NanoCpus, AutoRemove, StopTimeout).
MIN_API_VERSION = "1.25"
_CONNECTION_PREFIX = re.compile(r"^\w*Connection\(.*?\): ")


class DockerError(VicError):
    """A Docker API failure, in one sentence naming the host."""


def _version_tuple(text):
    return tuple(int(part) for part in str(text).split("."))


class Client:
    """A Docker SDK ``APIClient`` for one host and the sentence each of its failures becomes."""

    def __init__(self, docker_host, tls=False, validate_certs=False, ca_path=None, client_cert=None,
                 client_key=None, api_version="auto", timeout=60):
        self.host = docker_host
        tls_config = None
        if tls or validate_certs:
            try:
                tls_config = docker.tls.TLSConfig(
                    client_cert=(client_cert, client_key) if client_cert and client_key else None,
                    ca_cert=ca_path if validate_certs else None, verify=bool(validate_certs))
            except docker_errors.TLSParameterError as exc:
                # The SDK's first sentence says which file; the rest is a pointer to Docker's docs.
                raise DockerError("Docker host %s: ca_path, client_cert or client_key is not a readable file (%s)."
                                  % (docker_host, str(exc).split(".", 1)[0]))
        self._auto = str(api_version).lower() == "auto"
        base = docker_host.replace("tcp://", "https://") if tls_config and docker_host.startswith("tcp://") \
            else docker_host
        try:
            self.api = _NegotiatingClient(self._auto, base_url=base, tls=tls_config, timeout=timeout,
                                          version=MIN_API_VERSION if self._auto else api_version)
        except docker_errors.DockerException as exc:
            raise DockerError("Docker host %s: %s." % (docker_host, str(exc).rstrip(".")))

    def close(self):
        self.api.close()

    def call(self, what, method, *args, **kwargs):
        """``method(*args, **kwargs)`` of the SDK client; ``what`` says what it does, for the error sentence."""
        try:
            return method(*args, **kwargs)
        except docker_errors.NotFound as exc:
            raise NotFound(self._api_sentence(what, exc))
        except docker_errors.APIError as exc:
            kind = Conflict if exc.status_code == 409 else DockerError
            raise kind(self._api_sentence(what, exc))
        except requests.exceptions.SSLError as exc:
            raise DockerError("Docker host %s did not complete the TLS handshake while %s: %s (check "
                              "ca_path, client_cert, client_key and validate_certs)." % (self.host, what, _reason(exc)))
        except requests.exceptions.ConnectionError as exc:
            raise DockerError("Docker host %s cannot be reached while %s: %s." % (self.host, what, _reason(exc)))
        except requests.exceptions.Timeout as exc:
            raise DockerError("Docker host %s did not answer in time while %s: %s." % (self.host, what, _reason(exc)))
        except docker_errors.DockerException as exc:
            raise DockerError("Docker host %s: %s failed: %s." % (self.host, what, str(exc).rstrip(".")))

    def inspect(self, what, method, *args):
        """An inspect's answer, or None when the object does not exist."""
        try:
            return self.call(what, method, *args)
        except NotFound:
            return None

    def pull(self, reference):
        """Pull ``reference``; the stream's error, if any, becomes a DockerError (the SDK does not raise it)."""
        what = "pulling image %s" % reference

        def stream():
            return [message for message in self.api.pull(reference, stream=True, decode=True)
                    if isinstance(message, dict) and message.get("error")]

        errors = self.call(what, stream)
        if errors:
            raise DockerError("Docker host %s could not pull image %s: %s."
                              % (self.host, reference, str(errors[-1]["error"]).strip().rstrip(".")))

    def _api_sentence(self, what, exc):
        explanation = exc.explanation
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        try:
            explanation = json.loads(explanation)["message"]
        except (TypeError, ValueError, KeyError):
            pass
        text = str(explanation or exc).strip().rstrip(".")
        return "Docker host %s refused %s: %s (HTTP %s)." % (self.host, what, text, exc.status_code)


def _reason(exc):
    """The innermost reason of a requests failure: urllib3 wraps it in two or three layers."""
    reason = exc
    for _depth in range(6):
        inner = getattr(reason, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((arg for arg in reversed(getattr(reason, "args", ())) if isinstance(arg, BaseException)), None)
        if inner is None:
            break
        reason = inner
    if isinstance(reason, OSError) and reason.strerror:
        return str(reason.strerror).rstrip(".")
    # urllib3 starts with the connection object: "HTTPSConnection(host='h', port=1): Failed to establish ..."
    return _CONNECTION_PREFIX.sub("", str(reason)).strip().rstrip(".")


if HAS_DOCKER:
    class _NegotiatingClient(docker.APIClient):
        """An APIClient whose first request is unversioned when the version is ``auto``; the answer's
        ``Api-Version`` header (capped at what the SDK speaks) fixes the version from then on."""

        def __init__(self, auto, **kwargs):
            super().__init__(**kwargs)
            self._negotiating = auto
            if auto:
                self.hooks["response"].append(self._negotiated)

        def _url(self, pathfmt, *args, **kwargs):
            if self._negotiating:
                kwargs["versioned_api"] = False
            return super()._url(pathfmt, *args, **kwargs)

        def merge_environment_settings(self, url, proxies, stream, verify, cert):
            # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace the CA of the session (psf/requests#3829):
            # the task's ca_path must win, or an execution environment's bundle would reject a VCH's certificate.
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if isinstance(self.verify, str):
                settings["verify"] = self.verify
            return settings

        def _negotiated(self, response, *_args, **_kwargs):
            if self._negotiating:
                self._negotiating = False
                server = response.headers.get("Api-Version")
                if server:
                    ours = docker.constants.DEFAULT_DOCKER_API_VERSION
                    self._version = min(server, ours, key=_version_tuple)
            return response
