# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Datastore folders and files: FileManager calls and HTTP transfer on /folder; private."""

from __future__ import annotations

import urllib.error
import urllib.parse

from ansible.module_utils.urls import open_url

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError
from ansible_collections.vic.containers.plugins.module_utils import _vsphere_tasks as tasks

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - reported by the module
    vim = vmodl = None


def ds_path(datastore, path=""):
    """``[datastore] path`` as vSphere writes it."""
    return ("[%s] %s" % (datastore, path.strip("/"))).rstrip()


def make_directory(session, datacenter_ref, datastore, path):
    """Create ``[datastore] path`` with its parents; an existing folder is fine."""
    try:
        session.content.fileManager.MakeDirectory(name=ds_path(datastore, path), datacenter=datacenter_ref,
                                                  createParentDirectories=True)
    except vim.fault.FileAlreadyExists:
        pass
    except vmodl.MethodFault as fault:
        raise VSphereError(tasks.fault_message(fault, "creating folder %s" % ds_path(datastore, path)))


def start_delete(session, datacenter_ref, datastore, path):
    """Start deleting ``[datastore] path`` (a file or a whole folder); returns the task."""
    return tasks.call("deleting %s" % ds_path(datastore, path),
                      session.content.fileManager.DeleteDatastoreFile_Task,
                      name=ds_path(datastore, path), datacenter=datacenter_ref)


def _url(session, datacenter, datastore, path):
    query = urllib.parse.urlencode({"dcPath": datacenter, "dsName": datastore})
    return "https://%s:%s/folder/%s?%s" % (session.hostname, session.port, urllib.parse.quote(path.strip("/")), query)


def _request(session, method, url, data=None):
    # The SOAP session cookie authorizes the datastore file service too.
    headers = {"Cookie": session.session_cookie()}
    if data is not None:
        headers["Content-Type"] = "application/octet-stream"
    return open_url(url, data=data, method=method, headers=headers, validate_certs=session.validate_certs,
                    timeout=60)


def upload(session, datacenter, datastore, path, data):
    """Write ``data`` (bytes) to ``[datastore] path`` over HTTPS."""
    try:
        with _request(session, "PUT", _url(session, datacenter, datastore, path), data):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise VSphereError("Cannot upload %s: %s." % (ds_path(datastore, path), getattr(exc, "reason", exc)))


def download(session, datacenter, datastore, path):
    """The bytes of ``[datastore] path``, or None when the file does not exist."""
    try:
        with _request(session, "GET", _url(session, datacenter, datastore, path)) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise VSphereError("Cannot download %s: HTTP %s." % (ds_path(datastore, path), exc.code))
    except (urllib.error.URLError, OSError) as exc:
        raise VSphereError("Cannot download %s: %s." % (ds_path(datastore, path), getattr(exc, "reason", exc)))
