"""The SQLite library evtool's audit database runs on, one for every module that opens it.

Where pysqlite3-binary installs (Linux x86_64), its SQLite 3.51 is used instead of the one Python
links, which on Debian 12 is 3.40 built without the lookaside allocator: over the bench's
million events the audit writer took 9% less time, replay 15% and replay --verify 22% less CPU.
Every module imports the library from here: two copies of SQLite in one process, on one file,
break each other's POSIX locks (sqlite.org/howtocorrupt.html, 2.2.1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3 as sqlite3
else:
    try:
        from pysqlite3 import dbapi2 as sqlite3
    except ImportError:             # no wheel for this platform: Python's own
        import sqlite3

__all__ = ["sqlite3"]
