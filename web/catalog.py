#!/usr/bin/env python3
"""Fixes the face-model catalog's hosts into a built site: which URL the page downloads each
catalog model from (`download.page_url` in the site's models/manifest.json), and the page's
Content-Security-Policy, whose `connect-src` lists exactly those hosts (and the CDN they redirect
to), so the page can contact nothing else.

    python3 web/catalog.py SITE                                   (web/build.sh does this)
    python3 web/catalog.py SITE --host ORIGIN --cdn ORIGIN [--file ID=PATH ...]

The page can only use hosts that send CORS headers: Hugging Face's `resolve/main` URLs do (and
redirect to its CDN under hf.co); GitHub release downloads do not, so a catalog model whose only
URLs are GitHub's is offered as "bring the file" instead. --host/--cdn stand a test server in for
the model host (every catalog URL becomes ORIGIN/resolve/FILE), and --file gives an entry the
size and sha256 of a local file (the tests' random-weight checkpoints).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models"))
from unblur_models.common import sha256_file  # noqa: E402

# Hosts a page can download from, each with the origins its redirects go to.
PAGE_HOSTS = {"https://huggingface.co": ["https://*.hf.co"]}


def origin(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("site", type=Path)
    ap.add_argument("--host", help="a stand-in model host's origin (tests)")
    ap.add_argument("--cdn", help="the origin the stand-in host redirects to")
    ap.add_argument("--file", action="append", default=[], metavar="ID=PATH")
    a = ap.parse_args()
    if bool(a.host) != bool(a.cdn):
        sys.exit("catalog.py: --host and --cdn go together")

    manifest_path = a.site / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    files = dict(f.split("=", 1) for f in a.file)
    connect: list[str] = []
    for e in manifest["models"]:
        d = e.get("download")
        if e.get("delivery") != "catalog" or not d:
            continue
        if e["id"] in files:
            p = Path(files.pop(e["id"]))
            d["bytes"] = p.stat().st_size
            d["sha256"] = sha256_file(p)
        d.pop("page_url", None)
        if a.host:
            d["page_url"] = f"{a.host}/resolve/{d['file']}"
            hosts = [a.host, a.cdn]
        else:
            url = next((u for u in d.get("urls", []) if origin(u) in PAGE_HOSTS), None)
            if not url:
                continue  # no host the page can fetch from: the file can still be brought
            d["page_url"] = url
            hosts = [origin(url), *PAGE_HOSTS[origin(url)]]
        if not d.get("bytes"):
            # The page needs the size (progress, the quota check, the buffer it fills).
            d.pop("page_url")
            continue
        connect += [h for h in hosts if h not in connect]
    if files:
        sys.exit(f"catalog.py: no catalog entry {', '.join(files)}")
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")

    index = a.site / "index.html"
    html = index.read_text()
    csp, n = re.subn(r"connect-src [^;\"]*", "connect-src " + " ".join(["'self'", *connect]), html)
    if n != 1:
        sys.exit(f"catalog.py: {index} has no single connect-src directive")
    index.write_text(csp)
    print(f"catalog.py: connect-src 'self' {' '.join(connect)}", file=sys.stderr)


if __name__ == "__main__":
    main()
