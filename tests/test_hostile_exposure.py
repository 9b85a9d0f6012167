"""What a stage shows of what it is given: credentials never (not on stderr, not in ps), data
never as markup (not on the terminal, not on the page), and the page only to this machine."""

from __future__ import annotations

import struct
import time

import orjson
import pytest

from tests.conftest import run
from tests.test_hostile import no_traceback

# --- secrets ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "shown"), [
    ("AMQP://u:p4ss@h:5672/%2F", "AMQP://u:***@h:5672/%2F"),
    ("http://u:s3cret@h/x", "http://u:***@h/x"),
    ("amqp://u:p@ss w0rd@host/v", "amqp://u:***@host/v"),
    ("postgresql://evt:PASS@127.0.0.1/db", "postgresql://evt:***@127.0.0.1/db"),
    ("amqp://h/v?password=zz&x=1", "amqp://h/v?password=***&x=1"),
    ("host=a password=xx dbname=y", "host=a password=*** dbname=y"),
    ("amqp://guest:pa/ss@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
    ("amqp://guest:pa?ss@h/v?queue=q", "amqp://guest:***@h/v?queue=q"),
    ("postgresql://evt:a#b/c?d@[::1]:5432/db", "postgresql://evt:***@[::1]:5432/db"),
    ("cannot reach amqp://u:a@b/c@h:1/v (timed out)", "cannot reach amqp://u:***@h:1/v (timed out)"),
])
def test_every_credential_form_is_redacted(text, shown) -> None:
    from evtool.core.secrets import redact

    assert redact(text) == shown


@pytest.mark.parametrize("argv", [
    ["gen", "--count", "1", "-o", "amqp", "--amqp-url", "AMQP://u:SECRETPW@127.0.0.1:1/%2F"],
    ["gen", "--count", "1", "-o", "amqp://u:p@SECRETPW x@127.0.0.1:1/%2F?exchange=e"],
    ["gen", "--count", "1", "-o", "amqp://127.0.0.1:1/%2F?exchange=e&password=SECRETPW"],
    ["audit", "-q", "--db", "postgresql://postgres:SECRETPW@127.0.0.1:1/nodb"],
    *(["gen", "--count", "1", "-o", "amqp", "--amqp-url", f"amqp://u:SECRETPW{c}SECRETPW@127.0.0.1:1/%2F"]
      for c in "/?#"),
    *(["gen", "--count", "1", "-o", f"amqp://u:SECRETPW{c}SECRETPW@127.0.0.1:1/v?exchange=e"]
      for c in "/?#"),
    *(["audit", "-q", "--db", f"postgresql://postgres:SECRETPW{c}SECRETPW@127.0.0.1:1/nodb"]
      for c in "/?#"),
])
def test_a_password_never_shows_in_ps_or_on_stderr(argv) -> None:
    import subprocess

    from tests.conftest import evtool_cmd

    proc = subprocess.Popen([*evtool_cmd(*argv), "--connect-timeout", "2"] if argv[0] == "gen"
                            else evtool_cmd(*argv), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    first = proc.stderr.readline()      # the stage has started and tried its URL: its title is set
    try:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            title = f.read()
    except OSError:
        title = b""
    _, rest = proc.communicate(timeout=60)
    err = first + rest
    assert b"SECRETPW" not in title and b"SECRETPW" not in err, (title, err)
    assert err and b"Traceback" not in err


# --- watch: data is never markup, the page answers only this machine ----------------------------

HOSTILE_WINDOW = orjson.dumps({
    "kind": "window", "window_start": "2026-11-26T00:00:00Z", "window_end": "2026-11-26T00:00:05Z",
    "total": 2, "by_source": {"[link=http://evil]x": 2}, "by_region": {"[/bad]": 2},
    "by_region_source": {"[/bad]": {"[link=http://evil]x": 2}}, "event_ids": ["a", "b"]})
HOSTILE_ALERT = orjson.dumps({
    "kind": "alert", "alert_id": "a1", "window_start": "2026-11-26T00:00:00Z", "region": "[/bad]",
    "source": "<script>alert(1)</script>", "count": 3, "baseline": 1.0, "threshold": 5, "score": 9.0})


def test_the_terminal_view_shows_markup_in_data_as_text() -> None:
    result = run(["watch", "--once"], stdin=HOSTILE_WINDOW + b"\n" + HOSTILE_ALERT + b"\n")
    no_traceback(result)
    assert result.returncode == 0
    assert b"[/bad]" in result.stdout and b"[link=http://evil]x" in result.stdout


def _serving(port: int):
    import subprocess

    from tests.conftest import evtool_cmd

    proc = subprocess.Popen(evtool_cmd("watch", "--serve", f"127.0.0.1:{port}"), stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc.stdin.write(HOSTILE_WINDOW + b"\n" + HOSTILE_ALERT + b"\n")
    proc.stdin.close()
    deadline = time.monotonic() + 60
    while True:                             # until the page serves what it read
        try:
            status, body = _get(port, f"127.0.0.1:{port}", "/data")
            if status == 200 and orjson.loads(body)["alerts"]["latest"]:
                return proc
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "watch --serve never served"
        time.sleep(0.05)


def _get(port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", host)
    conn.endheaders()
    response = conn.getresponse()
    return response.status, response.read()


def test_the_page_escapes_data_and_answers_only_local_names(tmp) -> None:
    import socket

    port = 18000 + (hash(str(tmp)) % 2000)
    proc = _serving(port)
    try:
        status, body = _get(port, f"127.0.0.1:{port}")
        assert status == 200 and b"alert(1)" not in body and b"[/bad]" not in body   # the page holds no data
        status, body = _get(port, f"127.0.0.1:{port}", "/data")     # JSON, drawn as text (test_watch_page)
        latest = orjson.loads(body)["alerts"]["latest"][0]
        assert status == 200 and latest["source"] == "<script>alert(1)</script>"
        for host in ("evil.com", "[::1]evil.com", "0.0.0.0", f"0.0.0.0:{port}", "127.0.0.1.evil.com"):
            assert _get(port, host)[0] == 403, host
        assert _get(port, f"localhost:{port}", "/data")[0] == 200
        whole = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        for request in (b"GET / HTTP/1.1\r\nHo", whole):
            with socket.create_connection(("127.0.0.1", port)) as sock:    # gone mid-request: RST
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.sendall(request)
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        err = proc.stderr.read()
    assert b"Traceback" not in err and proc.returncode == 143


def test_serving_beyond_loopback_must_be_asked_on_the_command_line() -> None:
    result = run(["watch", "-i", "/dev/null"], env={"EVTOOL_WATCH_SERVE": "0.0.0.0:18999"})
    assert result.returncode == 2 and b"command line" in result.stderr
    no_traceback(result)
