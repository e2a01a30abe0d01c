# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The VCH key against someone who reads the datastore and the endpoint VM (issue 12, Security): the key file
in the image store does not open the sealed secrets; the endpoint, which holds the ops password, opens them;
a VCH whose key file an earlier version wrote (the key in clear) keeps working and is wrapped by the next run
that opens it; after the ops password changed, the administrator's TLS files open it again. Against vcsim,
with the real endpoint process and the Docker SDK."""

from pathlib import Path

import docker
import pytest

from ansible_collections.vic.containers.plugins.module_utils.vch import config as codec
from ansible_collections.vic.containers.plugins.module_utils.vch import engine, observe
from ansible_collections.vic.containers.plugins.module_utils.vsphere import inventory as inventory_reader
from ansible_collections.vic.containers.plugins.module_utils.vsphere.session import Session
from ansible_collections.vic.containers.tools.harness.endpoint import Endpoint, deploy

NAME = "fidkey"


@pytest.fixture(scope="module")
def made(vcsim, tmp_path_factory):
    certs = tmp_path_factory.mktemp("certs") / NAME
    summary = deploy(vcsim, NAME, certs)
    return {"summary": summary, "certs": certs}


def _session(sim, password=None):
    return Session(sim.host, sim.username, password or sim.password, sim.port, validate_certs=False)


def _record(sim):
    with _session(sim) as session:
        inv = inventory_reader.read(session)
        return observe.find(inv, NAME, inv.datacenter("DC0"))


def _key_file(sim, vch):
    datastore, folder = observe.image_store_folder(vch.config)
    return Path(sim.datastores[datastore]) / folder / codec.KEY_FILE


def _ping(endpoint, certs):
    tls = docker.tls.TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
                               ca_cert=str(certs / "ca.pem"), verify=True)
    client = docker.DockerClient(base_url="tcp://127.0.0.1:%d" % endpoint.port, tls=tls, version="1.43")
    try:
        return client.ping()
    finally:
        client.close()


def test_the_datastore_and_the_vm_record_alone_do_not_open_the_secrets(vcsim, made):
    vch = _record(vcsim)
    content = _key_file(vcsim, vch).read_bytes()
    # What a datastore reader has: the file, and the .vmx with the record; the file is not the key.
    assert codec.key_id(content) != vch.key_id
    with pytest.raises(codec.ConfigError):
        codec.unseal(vch.sealed, content[:32], vch.config["uuid"])
    assert codec.unwrap_key(content, vch.config["uuid"], [(codec.BY_PASSWORD, "not the password")]) is None
    # The endpoint's own way in: the ops password it logs in with.
    with _session(vcsim) as session:
        key, secrets = engine.load(session, NAME, "DC0")[1:]
    assert codec.key_id(key) == vch.key_id and secrets["ops_password"] == vcsim.password


def test_a_key_file_an_earlier_version_wrote_keeps_working_and_is_wrapped_by_the_next_run(vcsim, made):
    vch = _record(vcsim)
    with _session(vcsim) as session:
        key = engine.load(session, NAME, "DC0")[1]
    path = _key_file(vcsim, vch)
    path.write_bytes(key)   # as the previous version left it
    endpoint = Endpoint(vcsim, NAME)
    try:
        assert _ping(endpoint, made["certs"]) is True
    finally:
        endpoint.stop()
    again = deploy(vcsim, NAME, made["certs"], ops_password=vcsim.password)
    assert again["name"] == NAME
    content = path.read_bytes()
    assert codec.is_wrapped(content) and key not in content
    assert codec.unwrap_key(content, vch.config["uuid"], [(codec.BY_PASSWORD, vcsim.password)]) == key


def test_after_the_ops_password_changed_the_admin_tls_files_open_the_key(vcsim, made):
    """The run that sets a new ops password opens the key with the server key in tls.cert_path/admin (its
    own password no longer does), and wraps it under the new one, which the endpoint then holds."""
    vch = _record(vcsim)
    path = _key_file(vcsim, vch)
    with _session(vcsim) as session:
        key = engine.load(session, NAME, "DC0")[1]
    server_key = (made["certs"] / "admin" / "server-key.pem").read_text()
    path.write_bytes(codec.wrap_key(key, vch.config["uuid"], "the previous ops password", server_key))
    deploy(vcsim, NAME, made["certs"], ops_password=vcsim.password)
    assert codec.unwrap_key(path.read_bytes(), vch.config["uuid"], [(codec.BY_PASSWORD, vcsim.password)]) == key
