# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded DNS server's answers (``dns_server``), in dnspython's wire format, as dockerd's resolver gives
them (moby libnetwork/resolver.go):

* A and AAAA of a name it holds: its addresses of that family (shuffled, as dockerd), TTL 600; none of the
  family (a peer has no IPv6 address): an empty NOERROR, never forwarded; MX of such a name: an empty NOERROR
  (implicit MX);
* PTR of an address it holds: that address's first name;
* A and AAAA of a single-label name it does not hold, when the options set ndots above 0: an empty NOERROR;
* everything else: forwarded (``None``), and SERVFAIL when no upstream answers;
* a question that does not parse: FORMERR; an opcode other than QUERY: NOTIMP.

Imported at the first question only (the tether's start-up does not pay for dnspython).
"""

import ipaddress
import random

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset
import dns.rdtypes.ANY.PTR
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
from ansible_collections.vic.containers.services.tether.agent.dns_server import HEADER, header_reply

TTL = 600                   # dockerd's respTTL
UDP_SIZE = 512              # a UDP answer's size without EDNS (RFC 1035)
TCP_SIZE = 65535
_RECORDS = {dns.rdatatype.A: (4, dns.rdtypes.IN.A.A), dns.rdatatype.AAAA: (6, dns.rdtypes.IN.AAAA.AAAA)}


def answer(wire, names, tcp):
    """``(reply, query)``: the reply's wire when the server answers itself; else None and the parsed query, to
    forward; (None, None) for what is not a question (no whole header, a reply): nothing is sent."""
    if len(wire) < HEADER:
        return None, None
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return header_reply(wire, dns.rcode.FORMERR), None
    if query.flags & dns.flags.QR:
        return None, None
    if query.opcode() != dns.opcode.QUERY:
        return _reply(query, tcp, rcode=dns.rcode.NOTIMP), query
    if len(query.question) != 1:
        return _reply(query, tcp, rcode=dns.rcode.FORMERR), query
    question = query.question[0]
    if question.rdclass != dns.rdataclass.IN:
        return None, query
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.MX):
        text = _text(question.name)
        found = names.addresses(text)
        if found is None and names.single_label_local and "." not in text and question.rdtype != dns.rdatatype.MX:
            return _reply(query, tcp), query    # --dns-option ndots:N (N > 0): the client tries its search domains
        if found is None:
            return None, query
        version, record = _RECORDS.get(question.rdtype, (None, None))
        rdatas = [record(dns.rdataclass.IN, question.rdtype, address) for address in found
                  if ipaddress.ip_address(address).version == version]
        random.shuffle(rdatas)      # a name several peers share: each comes first in turn, as dockerd shuffles them
        return _reply(query, tcp, [dns.rrset.from_rdata_list(question.name, TTL, rdatas)] if rdatas else []), query
    if question.rdtype == dns.rdatatype.PTR:
        try:
            name = names.name_of(dns.reversename.to_address(question.name))
            target = None if name is None else dns.name.from_text(name)
        except (dns.exception.DNSException, ValueError):
            target = None       # not an address's name, or a name DNS cannot carry (a label over 63 bytes)
        if target is None:
            return None, query
        rdata = dns.rdtypes.ANY.PTR.PTR(dns.rdataclass.IN, dns.rdatatype.PTR, target)
        return _reply(query, tcp, [dns.rrset.from_rdata_list(question.name, TTL, [rdata])]), query
    return None, query


def _text(name):
    """A name's labels as they came, without the root's (no escapes: the names are held as /etc/hosts spells them)."""
    return ".".join(label.decode("utf-8", "replace") for label in name.labels if label)


def failure(query, rcode):
    """The reply that says ``rcode`` (SERVFAIL: no upstream answered; REFUSED: too many questions in flight)."""
    return _reply(query, False, rcode=rcode)


def _reply(query, tcp, rrsets=(), rcode=dns.rcode.NOERROR):
    response = dns.message.make_response(query, recursion_available=True)
    response.set_rcode(rcode)
    response.answer.extend(rrsets)
    size = TCP_SIZE if tcp else max(UDP_SIZE, query.payload if query.edns >= 0 else 0)
    try:
        return response.to_wire(max_size=size)
    except dns.exception.TooBig:
        # Too long for a datagram: the truncated flag and no answers, and the client asks again over TCP.
        response.answer.clear()
        response.flags |= dns.flags.TC
        return response.to_wire(max_size=size)
