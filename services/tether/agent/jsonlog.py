# Copyright (c) 2026 vic.containers contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The container's log (``output.log``) as Docker's json-file driver writes it.

One JSON object per line: ``{"log": "...", "stream": "stdout", "time": "<RFC 3339 UTC, ns>"}``,
the output split after each newline as Docker does, a partial line written as
soon as its chunk ends. The last line, when the primary process has ended, is
``{"exit": <code>, "time": "<finished_at>"}``: the endpoint reads it back when
the tether could not tell it (a crash, a power-off). The lines' format is
``protocol``'s (the endpoint parses them with it); this module cuts the output
into them and writes each with one ``os.write``, so what is in the file is
whole even if the VM stops.
"""

import codecs
import os
import time

from ansible_collections.vic.containers.services.tether import protocol


def log_time(nanoseconds=None):
    """Docker's json-file time: RFC 3339 in UTC with 9 fraction digits (``RFC3339NanoFixed``)."""
    nanoseconds = time.time_ns() if nanoseconds is None else nanoseconds
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def split_lines(text):
    """``text`` cut after every newline (each piece keeps its ``\\n``); a last piece without one stays partial."""
    pieces = text.splitlines(keepends=True) if text else []
    # str.splitlines also cuts at \r, \v, \x1c...: Docker cuts only at \n, so glue those back.
    lines, current = [], ""
    for piece in pieces:
        current += piece
        if current.endswith("\n"):
            lines.append(current)
            current = ""
    if current:
        lines.append(current)
    return lines


def log_lines(stream, text, stamp):
    """The json-file lines (bytes, ``\\n``-terminated) of one chunk of a stream's output."""
    return [protocol.log_output_line(stream, line, stamp) for line in split_lines(text)]


class LogWriter:
    """Writes a process's output to the log file descriptor, one json-file line per write."""

    def __init__(self, fd):
        self.fd = fd
        # One incremental decoder per stream: a UTF-8 character cut between two chunks is not mangled.
        self._decoders = {stream: codecs.getincrementaldecoder("utf-8")("replace") for stream in protocol.LOG_STREAMS}

    def output(self, stream, data):
        """Log one chunk of ``stream``'s (1 stdout, 2 stderr) output."""
        self._write_all(log_lines(stream, self._decoders[stream].decode(data), log_time()))

    def flush(self):
        """Log what the decoders still hold (an incomplete character at the end of the output)."""
        stamp = log_time()
        for stream, decoder in self._decoders.items():
            self._write_all(log_lines(stream, decoder.decode(b"", final=True), stamp))

    def start(self, started_at):
        """Log that a run of the primary process began (before its output)."""
        self._write_all([protocol.log_start_line(started_at)])

    def exit(self, code, finished_at):
        """Log the primary process's end (after its output)."""
        self.flush()
        self._write_all([protocol.log_exit_line(code, finished_at)])

    def _write_all(self, lines):
        for line in lines:
            view = memoryview(line)
            while view:
                try:
                    view = view[os.write(self.fd, view):]
                except BlockingIOError:
                    time.sleep(0.001)   # a serial port's buffer is full: the log must stay whole
                except OSError:
                    return              # the log is gone (a closed descriptor): the channel still has the output
