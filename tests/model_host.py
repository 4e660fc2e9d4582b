#!/usr/bin/env python3
"""A stand-in for the catalog's model host, for the CLI and page tests: as Hugging Face does, the
host answers `/resolve/FILE` with a redirect to a CDN on another origin, which serves the file
with CORS headers and HTTP Range. It stands in for a GitHub release as well (the Pages build's
test): `/OWNER/REPO/releases/download/TAG/FILE` is redirected the same way, as GitHub redirects to
its object store.

    python3 tests/model_host.py --dir DIR --port P --cdn-port Q [--log FILE]

The CDN's behaviour is switched at run time with `GET http://127.0.0.1:P/_mode/MODE`:
  ok        serve the file
  corrupt   serve it with one byte changed
  halfway   send the full Content-Length, then stop after half the bytes (an interrupted download;
            a request with a Range is served in full, so a resume completes it)
Every request (both origins) is appended to --log as "PORT METHOD PATH RANGE".
"""
from __future__ import annotations

import argparse
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STATE = {"mode": "ok"}


def make_handler(directory: str, port: int, cdn_port: int, log: str | None, is_cdn: bool):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def record(self):
            if log:
                with open(log, "a") as f:
                    f.write(f"{cdn_port if is_cdn else port} {self.command} {self.path} "
                            f"{self.headers.get('Range', '-')}\n")

        def cors(self):
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Range")
            self.send_header("Access-Control-Expose-Headers", "Content-Length, Content-Range, Accept-Ranges")

        def do_OPTIONS(self):
            self.record()
            self.send_response(204)
            self.cors()
            self.end_headers()

        def do_GET(self):
            self.record()
            if not is_cdn:
                m = re.match(r"^/_mode/(\w+)$", self.path)
                if m:
                    STATE["mode"] = m.group(1)
                    self.send_response(200)
                    self.end_headers()
                    return
                m = re.match(r"^/(?:resolve|[\w.\-]+/[\w.\-]+/releases/download/[\w.\-]+)/([\w.\-]+)$", self.path)
                if not m:
                    self.send_error(404)
                    return
                self.send_response(302)
                self.cors()
                self.send_header("Location", f"http://127.0.0.1:{cdn_port}/{m.group(1)}")
                self.end_headers()
                return
            name = self.path.lstrip("/")
            path = os.path.join(directory, name)
            if "/" in name or not os.path.isfile(path):
                self.send_error(404)
                return
            size = os.path.getsize(path)
            start = 0
            rng = self.headers.get("Range")
            m = re.match(r"bytes=(\d+)-$", rng or "")
            if m:
                start = int(m.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            else:
                self.send_response(200)
            self.cors()
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(size - start))
            self.end_headers()
            mode = STATE["mode"]
            stop = size // 2 if mode == "halfway" and not m else size
            with open(path, "rb") as f:
                f.seek(start)
                pos = start
                while pos < stop:
                    chunk = f.read(min(1 << 20, stop - pos))
                    if not chunk:
                        break
                    if mode == "corrupt" and pos <= size // 3 < pos + len(chunk):
                        i = size // 3 - pos
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    pos += len(chunk)
            if stop < size:
                self.close_connection = True
                self.connection.shutdown(2)

    return Handler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cdn-port", type=int, required=True)
    p.add_argument("--log")
    a = p.parse_args()
    servers = [ThreadingHTTPServer(("127.0.0.1", port), make_handler(a.dir, a.port, a.cdn_port, a.log, cdn))
               for port, cdn in ((a.port, False), (a.cdn_port, True))]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__":
    main()
