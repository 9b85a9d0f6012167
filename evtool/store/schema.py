"""The audit tables (names from the original system) and their migrations, one list per version.

`PRAGMA user_version` (SQLite) holds how many migrations a database has had.
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

MIGRATIONS: list[list[str]] = [
    [
        # The contract's columns are read out of `raw` (virtual: computed when read, not stored),
        # so an event is written once.
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
]
