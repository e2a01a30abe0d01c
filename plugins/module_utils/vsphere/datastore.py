# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Datastore folders and files: FileManager calls and HTTP transfer on /folder; private."""

from __future__ import annotations

import http.client
import os
import re
import urllib.parse

from ansible_collections.vic.containers.plugins.module_utils._errors import VSphereError
from ansible_collections.vic.containers.plugins.module_utils.vsphere import pc
from ansible_collections.vic.containers.plugins.module_utils.vsphere import tasks

try:
    from pyVmomi import vim, vmodl
except ImportError:  # pragma: no cover - reported by the module
    vim = vmodl = None


_DS_PATH = re.compile(r"^\[([^\]]+)\]\s*(.*)$")


def ds_path(datastore, path=""):
    """``[datastore] path`` as vSphere writes it."""
    return ("[%s] %s" % (datastore, path.strip("/"))).rstrip()


def parse_ds_path(text):
    """(datastore, path) of ``[datastore] path``, the inverse of ``ds_path``; ValueError for other text."""
    match = _DS_PATH.match(text or "")
    if not match:
        raise ValueError("%r is not a datastore path ([datastore] path)" % (text,))
    return match.group(1), match.group(2).strip("/")


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


def upload(session, datacenter, datastore, path, data):
    """Write ``data`` (bytes) to ``[datastore] path`` over HTTPS."""
    put(session, datacenter, datastore, path, lambda: data, len(data))


def download(session, datacenter, datastore, path, offset=0):
    """The bytes of ``[datastore] path`` from byte ``offset`` on, or None when the file does not exist."""
    failure = "Cannot download %s" % ds_path(datastore, path)
    headers = {"Range": "bytes=%d-" % offset} if offset else {}
    status, reason, data = _exchange(session, "GET", _path(datacenter, datastore, path), headers, None, failure)
    if status == 404:
        return None
    if status == 416:  # nothing at or past offset yet
        return b""
    if status == 200:
        return data[offset:]  # a server that ignores Range sends it all
    if status != 206:
        raise VSphereError("%s: HTTP %d %s." % (failure, status, reason))
    return data


def _path(datacenter, datastore, path):
    query = urllib.parse.urlencode({"dcPath": datacenter, "dsName": datastore})
    return "/folder/%s?%s" % (urllib.parse.quote(path.strip("/")), query)


def put(session, datacenter, datastore, path, body, size):
    """Write ``[datastore] path`` over a kept-alive connection; ``body()`` gives the bytes or an iterable of them.

    Returns the number of bytes sent.
    """
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    failure = "Cannot upload %s" % ds_path(datastore, path)
    status, reason, unused_body = _exchange(session, "PUT", _path(datacenter, datastore, path), headers, body, failure)
    if status not in (200, 201, 204):
        raise VSphereError("%s: HTTP %d %s." % (failure, status, reason))
    return size


def _exchange(session, method, path, headers, body, failure):
    """One request on the session's kept-alive connection of this thread: (status, reason, response body).

    The SOAP session cookie authorizes the datastore file service too. A
    connection the server closed meanwhile is reopened once; ``body()`` is
    called again for the second try.
    """
    headers = dict(headers, Cookie=session.session_cookie())
    retried = False
    while True:
        connection = session.connection()
        try:
            connection.request(method, path, body=body() if body is not None else None, headers=headers)
            response = connection.getresponse()
            return response.status, response.reason, response.read()
        except (http.client.HTTPException, OSError) as exc:
            session.forget_connection()
            if retried:
                raise VSphereError("%s: %s." % (failure, exc))
            retried = True


def upload_file(session, datacenter, datastore, path, local_path, chunk_size=1024 * 1024):
    """Stream the local file ``local_path`` to ``[datastore] path`` (a disk extent: never all in memory)."""
    size = os.path.getsize(local_path)

    def chunks():
        with open(local_path, "rb") as handle:
            while True:
                block = handle.read(chunk_size)
                if not block:
                    return
                yield block

    return put(session, datacenter, datastore, path, chunks, size)


def start_move(session, datacenter_ref, datastore, source, destination):
    """Start moving ``[datastore] source`` over ``[datastore] destination`` (replacing it); returns the task."""
    return tasks.call("moving %s" % ds_path(datastore, source),
                      session.content.fileManager.MoveDatastoreFile_Task,
                      sourceName=ds_path(datastore, source), sourceDatacenter=datacenter_ref,
                      destinationName=ds_path(datastore, destination), destinationDatacenter=datacenter_ref,
                      force=True)


def browse(session, datastore_ref, datastore, path):
    """Every folder under ``[datastore] path`` (itself included) -> {file name: size}; {} when it does not exist.

    One datastore browser look-up, one search task and its wait, whatever the number of files.
    """
    browser = pc.retrieve_objects(session, [datastore_ref], ["browser"])[0].get("browser")
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=["*"],
                                                details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True))
    what = "listing %s" % ds_path(datastore, path)
    task = tasks.call(what, browser.SearchDatastoreSubFolders_Task, datastorePath=ds_path(datastore, path),
                      searchSpec=spec)
    results = tasks.wait(session, {task: what}, ignore=("FileNotFound",))[0]
    folders = {}
    for result in results or ():
        folder = parse_ds_path(result.folderPath)[1]
        folders[folder] = {f.path: (f.fileSize or 0) for f in result.file or ()
                           if not isinstance(f, vim.host.DatastoreBrowser.FolderInfo)}
    return folders
