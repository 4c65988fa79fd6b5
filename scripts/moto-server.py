"""moto_server with its requests applied one at a time.

moto keeps its state in plain Python objects and serves each request on its own thread
without a lock, so two concurrent writes that create the same DynamoDB item can both
succeed (two `ADD seq :1` on a new item both answer 1). DynamoDB applies the writes of one
item atomically; serialising moto's request handling restores that guarantee, so the
contract's concurrency checks test our conditional writes, not moto's threading. Requests
are still accepted concurrently (and the test proxy still overlaps them).

Usage: moto-server.py -H 127.0.0.1 -p PORT   (the options of moto_server)
"""
import threading

from moto import server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_lock = threading.Lock()
_call = DomainDispatcherApplication.__call__


def _serialised(self, environ, start_response):
    with _lock:
        # moto builds each response whole before returning it.
        return list(_call(self, environ, start_response))


DomainDispatcherApplication.__call__ = _serialised

if __name__ == "__main__":
    server.main()
