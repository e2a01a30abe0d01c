# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The endpoint's TLS server context, built from the VCH record and its sealed secrets."""

import os
import ssl
import tempfile


def server_context(tls_record, server_key_pem):
    """An SSLContext serving the VCH's certificate; with verify, clients must show a cert of its CA.

    None when the VCH was created with TLS off (plain TCP, as vic-machine --no-tls).
    """
    if not tls_record.get("enabled"):
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads a key only from a file: a private folder, gone once loaded.
    with tempfile.TemporaryDirectory(prefix="vch-tls-") as folder:
        cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert, "w", encoding="ascii") as handle:
            handle.write(tls_record["server_cert"])
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(server_key_pem)
        context.load_cert_chain(cert, key)
    if tls_record.get("verify"):
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=tls_record["client_ca"])
    return context
