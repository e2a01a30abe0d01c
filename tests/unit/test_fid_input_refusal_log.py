"""A refused TLS client is logged once per peer per minute (services/endpoint/tls.py)."""

import logging
import ssl

from ansible_collections.vic.containers.services.endpoint.tls import RefusalLog


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def refusal(message):
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_message = message
    return exc


def test_a_peer_is_logged_once_a_minute_with_its_address_and_the_reason(caplog):
    clock = Clock()
    log = RefusalLog(clock=clock)
    with caplog.at_level(logging.INFO, logger="vic.endpoint"):
        for port in (5000, 5001, 5002):
            log.refused(("10.0.0.1", port), refusal("unable to get local issuer certificate"))
        log.refused(("10.0.0.2", 6000), ConnectionResetError(104, "Connection reset by peer"))
        clock.now += 59
        log.refused(("10.0.0.1", 5003), refusal("unable to get local issuer certificate"))
        clock.now += 2
        log.refused(("10.0.0.1", 5004), refusal("certificate has expired"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "TLS handshake with 10.0.0.1:5000 refused: its certificate was not accepted: "
        "unable to get local issuer certificate",
        "TLS handshake with 10.0.0.2:6000 refused: [Errno 104] Connection reset by peer",
        "TLS handshake with 10.0.0.1:5004 refused: its certificate was not accepted: certificate has expired",
    ]
    assert all(r.levelno == logging.INFO for r in caplog.records)
