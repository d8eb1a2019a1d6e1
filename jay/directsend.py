"""Send a small response straight to the socket when the transport has nothing queued.

Twisted's ``transport.write`` only queues: it registers the socket for writability
(``epoll_ctl``), the reactor comes back on its next turn, sends, and unregisters it again
(another ``epoll_ctl``). For a request/response protocol answering a few hundred bytes that is
two system calls and a reactor turn per response, about a tenth of the CPU of a small GET.
When nothing is queued, sending at once is what the reactor would do next anyway, in the same
order; whatever the kernel does not take (a full send buffer) is queued the normal way, so flow
control and producers behave exactly as before.

Only a plain TCP transport of Twisted's own (``twisted.internet.tcp.Connection``) qualifies; TLS
transports, test transports and anything unknown take ``transport.write``.
"""

from __future__ import annotations

from errno import EAGAIN, ENOBUFS, EWOULDBLOCK
from typing import Any

from twisted.internet import tcp

_RETRY_LATER = frozenset((EAGAIN, EWOULDBLOCK, ENOBUFS))


def send_now(transport: Any, data: bytes) -> None:
    """Write ``data`` to ``transport``: to the socket at once if nothing is queued before it."""
    if (
        data
        and isinstance(transport, tcp.Connection)
        and not transport.TLS
        and transport.connected
        and not transport.disconnecting
        and not transport._writeDisconnected
        and not transport._tempDataBuffer
        and len(transport.dataBuffer) == transport.offset
    ):
        try:
            sent = transport.socket.send(data)
        except InterruptedError:
            sent = 0
        except OSError as exc:
            if exc.errno not in _RETRY_LATER:
                # Let the transport meet the error on its own write path and report it.
                transport.write(data)
                return
            sent = 0
        if sent >= len(data):
            return
        data = data[sent:]
    transport.write(data)
