"""The audit tables (names from the original system) and their migrations, one list per version.

`PRAGMA user_version` (SQLite) holds how many migrations a database has had. `TABLE_COLUMNS` are
the rows a batch carries; in SQLite since version 2, `events_in` and `trace` are views over
compact storage (`event_store`, `trace_store`) that read exactly as the tables did.
"""

from __future__ import annotations

TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "events_in": ("event_id", "raw", "received_at", "ts_us"),
    "metrics_out": ("metric_id", "date", "region", "window_start", "window_end", "window_seconds",
                    "counts", "total", "created_at", "raw"),
    "trace": ("metric_id", "event_id"),
    "windows": ("window_id", "window_start", "window_end", "window_seconds", "total", "partition",
                "raw", "created_at"),
    "alerts": ("alert_id", "window_start", "region", "source", "count", "baseline", "threshold",
               "score", "raw", "created_at"),
    "deadletters": ("deadletter_id", "stage", "reason", "error", "event_id", "raw", "record",
                    "created_at"),
}

# the roles (pack.json's fields and time keys) audit read the events by, recorded once (recorded.py)
ROLES_DDL = ("CREATE TABLE IF NOT EXISTS evtool_roles "
             "(id INTEGER PRIMARY KEY CHECK (id = 1), roles TEXT NOT NULL)")

READABLE = ", ".join(f"json_extract(raw, '$.{column}') AS {column}" for column in (
    "timestamp", "region", "source", "schema_version", "correlation_id", "payload"))
_METRIC = ", ".join(TABLE_COLUMNS["metrics_out"])

MIGRATIONS: list[list[str]] = [
    [
        # Version 1's columns read out of `raw` were VIRTUAL, but SQLite computes every generated
        # column on each insert all the same (half of an event's insert time): version 2 moves
        # them into a view.
        """CREATE TABLE events_in (
            event_id TEXT PRIMARY KEY,
            timestamp TEXT GENERATED ALWAYS AS (json_extract(raw, '$.timestamp')) VIRTUAL,
            region TEXT GENERATED ALWAYS AS (json_extract(raw, '$.region')) VIRTUAL,
            source TEXT GENERATED ALWAYS AS (json_extract(raw, '$.source')) VIRTUAL,
            schema_version TEXT GENERATED ALWAYS AS (json_extract(raw, '$.schema_version')) VIRTUAL,
            correlation_id TEXT GENERATED ALWAYS AS (json_extract(raw, '$.correlation_id')) VIRTUAL,
            payload TEXT GENERATED ALWAYS AS (json_extract(raw, '$.payload')) VIRTUAL,
            raw TEXT NOT NULL, received_at TEXT NOT NULL, ts_us INTEGER NOT NULL)""",
        "CREATE INDEX events_in_time ON events_in (ts_us, event_id)",
        """CREATE TABLE metrics_out (
            metric_id TEXT PRIMARY KEY, date TEXT NOT NULL, region TEXT NOT NULL,
            window_start TEXT NOT NULL, window_end TEXT NOT NULL, window_seconds REAL NOT NULL,
            counts TEXT NOT NULL, total INTEGER NOT NULL, created_at TEXT NOT NULL, raw TEXT NOT NULL)""",
        """CREATE TABLE trace (
            metric_id TEXT NOT NULL, event_id TEXT NOT NULL,
            PRIMARY KEY (metric_id, event_id)) WITHOUT ROWID""",
        """CREATE TABLE windows (
            window_id TEXT PRIMARY KEY, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
            window_seconds REAL NOT NULL, total INTEGER NOT NULL, partition INTEGER,
            raw TEXT NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE alerts (
            alert_id TEXT PRIMARY KEY, window_start TEXT, region TEXT, source TEXT, count INTEGER,
            baseline REAL, threshold REAL, score REAL, raw TEXT NOT NULL, created_at TEXT NOT NULL)""",
        """CREATE TABLE deadletters (
            deadletter_id TEXT PRIMARY KEY, stage TEXT, reason TEXT, error TEXT, event_id TEXT,
            raw TEXT, record TEXT NOT NULL, created_at TEXT NOT NULL)""",
    ],
    [
        """CREATE TABLE event_store (
            event_id TEXT PRIMARY KEY, raw TEXT NOT NULL, received_at TEXT NOT NULL,
            ts_us INTEGER NOT NULL)""",
        "INSERT INTO event_store SELECT event_id, raw, received_at, ts_us FROM events_in ORDER BY rowid",
        "DROP TABLE events_in",
        # replay's order is (ts_us, event_id); ties in ts_us are few, and sorting them costs
        # less than carrying each 36-character id a second time
        "CREATE INDEX event_store_time ON event_store (ts_us)",
        f"CREATE VIEW events_in AS SELECT event_id, {READABLE}, raw, received_at, ts_us FROM event_store",
        # `seq` (stable, unlike a bare rowid) lets trace name its metric in 8 bytes, not 36, and
        # a new metric's trace rows land at the end of trace_store instead of all over it.
        "ALTER TABLE metrics_out RENAME TO metrics_v1",
        """CREATE TABLE metrics_out (
            metric_id TEXT NOT NULL UNIQUE, date TEXT NOT NULL, region TEXT NOT NULL,
            window_start TEXT NOT NULL, window_end TEXT NOT NULL, window_seconds REAL NOT NULL,
            counts TEXT NOT NULL, total INTEGER NOT NULL, created_at TEXT NOT NULL, raw TEXT NOT NULL,
            seq INTEGER PRIMARY KEY)""",
        f"INSERT INTO metrics_out ({_METRIC}) SELECT {_METRIC} FROM metrics_v1 ORDER BY rowid",
        """CREATE TABLE trace_store (
            metric_seq INTEGER NOT NULL, event_id TEXT NOT NULL,
            PRIMARY KEY (metric_seq, event_id)) WITHOUT ROWID""",
        """INSERT INTO trace_store SELECT m.seq, t.event_id FROM trace t
            JOIN metrics_out m ON m.metric_id = t.metric_id ORDER BY 1, 2""",
        "DROP TABLE trace",
        "DROP TABLE metrics_v1",
        """CREATE VIEW trace AS SELECT m.metric_id AS metric_id, t.event_id AS event_id
            FROM trace_store t JOIN metrics_out m ON m.seq = t.metric_seq""",
        # the views take the edits their tables took (an operator's cleanup, a tamper test)
        """CREATE TRIGGER events_in_insert INSTEAD OF INSERT ON events_in BEGIN
            INSERT INTO event_store (event_id, raw, received_at, ts_us)
            VALUES (NEW.event_id, NEW.raw, NEW.received_at, NEW.ts_us); END""",
        """CREATE TRIGGER events_in_update INSTEAD OF UPDATE ON events_in BEGIN
            UPDATE event_store SET event_id = NEW.event_id, raw = NEW.raw,
            received_at = NEW.received_at, ts_us = NEW.ts_us WHERE event_id = OLD.event_id; END""",
        """CREATE TRIGGER events_in_delete INSTEAD OF DELETE ON events_in BEGIN
            DELETE FROM event_store WHERE event_id = OLD.event_id; END""",
        """CREATE TRIGGER trace_insert INSTEAD OF INSERT ON trace BEGIN
            INSERT INTO trace_store (metric_seq, event_id)
            SELECT seq, NEW.event_id FROM metrics_out WHERE metric_id = NEW.metric_id; END""",
        """CREATE TRIGGER trace_delete INSTEAD OF DELETE ON trace BEGIN
            DELETE FROM trace_store WHERE event_id = OLD.event_id
            AND metric_seq = (SELECT seq FROM metrics_out WHERE metric_id = OLD.metric_id); END""",
    ],
]
