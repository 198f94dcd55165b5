"""A small Hugging Face Hub on loopback for the download tests (no machine here reaches huggingface.co).

It implements only what `bitnet pull` / `-hf` and the PyPI huggingface_hub client use, written from the Hub's
public HTTP API and from what huggingface_hub sends:
- GET /api/models/ORG/NAME[/revision/REV][?blobs=true]: the repository info (`sha`, `siblings`; with blobs=true each
  sibling's `size`, `blobId` and, for LFS files, `lfs.sha256`/`lfs.size`); GET /api/models/ORG/NAME/tree/REV: the
  file list huggingface_hub's snapshot_download reads (one page; files at the root only).
- HEAD/GET /ORG/NAME/resolve/REV/PATH: files kept in git answer 200 with `ETag` (git blob SHA-1), LFS files answer
  302 to an absolute "CDN" URL with `X-Linked-Etag` (the SHA-256), `X-Linked-Size`; both carry `X-Repo-Commit`.
  A renamed repository answers 307 with a relative Location, as the Hub does.
- GET /cdn/SHA256: the content, with `Range: bytes=N-` (206 + Content-Range) or whole (200).
- 401 with X-Error-Code RepoNotFound (unknown or private without a token), GatedRepo (gated without an accepted
  token), 404 RevisionNotFound / EntryNotFound, as the Hub marks them.
Fault injection for the tests: `drop_after[sha] = (bytes, times)` closes the CDN connection after `bytes` of the body
`times` times; `corrupt[sha] = True` serves altered bytes; `fake_size[(repo, path)]` lies about a file's size.
Every request is recorded in `log` as (method, path, Range header).
"""
import hashlib
import http.server
import json
import threading
import urllib.parse


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, files, lfs_suffixes=(".gguf", ".safetensors"), gated=False, private=False, commit=None):
        self.files = dict(files)  # path -> bytes
        self.lfs = {p for p in self.files if p.endswith(tuple(lfs_suffixes))}
        self.gated = gated
        self.private = private
        digest = hashlib.sha1()
        for p in sorted(self.files):
            digest.update(p.encode() + b"\0" + hashlib.sha256(self.files[p]).digest())
        self.commit = commit or digest.hexdigest()
        self.refs = {"main": self.commit}

    def sha256(self, path):
        return hashlib.sha256(self.files[path]).hexdigest()


class FakeHub:
    def __init__(self, tokens=("hf_good",)):
        self.repos = {}         # "org/name" -> Repo
        self.renamed = {}       # "old/name" -> "org/name"
        self.tokens = set(tokens)
        self.drop_after = {}    # sha256 -> [bytes, times]
        self.corrupt = {}       # sha256 -> True
        self.fake_size = {}     # (repo, path) -> size
        self.log = []
        self.lock = threading.Lock()
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                hub._handle(self, head=True)

            def do_GET(self):
                hub._handle(self, head=False)

        # The Hub and its "CDN" are two origins, as huggingface.co and cdn-lfs.hf.co: clients follow redirects
        # within the Hub's origin and stop at one that leaves it (the file's metadata is on that response).
        self.servers = []
        for _ in range(2):
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        self.port = self.servers[0].server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.cdn_url = f"http://127.0.0.1:{self.servers[1].server_address[1]}"

    def close(self):
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def add(self, name, repo):
        self.repos[name] = repo
        return repo

    def requests(self, kind=None):
        with self.lock:
            return [r for r in self.log if kind is None or r[1].startswith(kind)]

    def clear_log(self):
        with self.lock:
            self.log.clear()

    # ---- request handling -------------------------------------------------------------------------------------
    def _send(self, h, status, headers=None, body=b"", head=False):
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head and body:
            h.wfile.write(body)

    def _error(self, h, status, code, message, head):
        body = json.dumps({"error": message}).encode()
        self._send(h, status, {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
                   body, head)

    def _authorized(self, h, repo):
        auth = h.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        return token in self.tokens

    def _check_access(self, h, name, head):
        """The Repo, or None after answering the error."""
        repo = self.repos.get(name)
        if repo is None or (repo.private and not self._authorized(h, repo)):
            self._error(h, 401, "RepoNotFound", "Repository Not Found", head)
            return None
        if repo.gated and not self._authorized(h, repo):
            self._error(h, 401, "GatedRepo", f"Access to model {name} is restricted.", head)
            return None
        return repo

    def _commit(self, repo, rev):
        if rev in repo.refs:
            return repo.refs[rev]
        if rev == repo.commit:
            return rev
        return None

    def _handle(self, h, head):
        url = urllib.parse.urlsplit(h.path)
        path = urllib.parse.unquote(url.path)
        with self.lock:
            self.log.append((h.command, path, h.headers.get("Range")))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            return self._api(h, parts[2:], url.query, head)
        if parts[0] == "cdn" and len(parts) == 2:
            return self._cdn(h, parts[1], head)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(h, "/".join(parts[:2]), parts[3], "/".join(parts[4:]), head)
        self._error(h, 404, "NotFound", "no such route", head)

    def _api(self, h, parts, query, head):
        name = "/".join(parts[:2])
        if name in self.renamed:
            rest = "/".join(parts[2:])
            loc = f"/api/models/{self.renamed[name]}" + (f"/{rest}" if rest else "") + (f"?{query}" if query else "")
            return self._send(h, 307, {"Location": loc}, b"", head)
        repo = self._check_access(h, name, head)
        if repo is None:
            return
        rev = "main"
        if len(parts) >= 4 and parts[2] in ("revision", "tree"):
            rev = parts[3]  # huggingface_hub quotes "/" in a revision
        commit = self._commit(repo, rev)
        if commit is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        if len(parts) >= 4 and parts[2] == "tree":  # list_repo_tree (snapshot_download): one page, root only
            tree = []
            for p, data in sorted(repo.files.items()):
                e = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": p}
                if p in repo.lfs:
                    e["lfs"] = {"oid": repo.sha256(p), "size": len(data), "pointerSize": 134}
                tree.append(e)
            return self._send(h, 200, {"Content-Type": "application/json"}, json.dumps(tree).encode(), head)
        blobs = "blobs=true" in query
        siblings = []
        for p, data in sorted(repo.files.items()):
            s = {"rfilename": p}
            if blobs:
                size = self.fake_size.get((name, p), len(data))
                s["size"] = size
                s["blobId"] = git_blob_sha1(data)
                if p in repo.lfs:
                    s["lfs"] = {"sha256": repo.sha256(p), "size": size, "pointerSize": 134}
            siblings.append(s)
        info = {"_id": "x", "id": name, "modelId": name, "sha": commit, "private": repo.private,
                "gated": "manual" if repo.gated else False, "disabled": False, "siblings": siblings,
                "tags": [], "downloads": 0, "likes": 0}
        self._send(h, 200, {"Content-Type": "application/json"}, json.dumps(info).encode(), head)

    def _resolve(self, h, name, rev, path, head):
        if name in self.renamed:
            loc = f"/{self.renamed[name]}/resolve/{urllib.parse.quote(rev, safe='')}/{urllib.parse.quote(path)}"
            return self._send(h, 307, {"Location": loc}, b"", head)
        repo = self._check_access(h, name, head)
        if repo is None:
            return
        commit = self._commit(repo, rev)
        if commit is None:
            return self._error(h, 404, "RevisionNotFound", f"Invalid rev id: {rev}", head)
        if path not in repo.files:
            return self._error(h, 404, "EntryNotFound", f"{path} does not exist on {rev}", head)
        data = repo.files[path]
        size = self.fake_size.get((name, path), len(data))
        if path in repo.lfs:
            sha = repo.sha256(path)
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {size}\n".encode()
            return self._send(h, 302, {"Location": f"{self.cdn_url}/cdn/{sha}", "X-Repo-Commit": commit,
                                       "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(size),
                                       "ETag": f'"{git_blob_sha1(pointer)}"'}, b"", head)
        self._send(h, 200, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                            "Content-Type": "application/octet-stream"}, data, head)

    def _cdn(self, h, sha, head):
        data = None
        for repo in self.repos.values():
            for p in repo.lfs:
                if repo.sha256(p) == sha:
                    data = repo.files[p]
        if data is None:
            return self._error(h, 404, "EntryNotFound", "no such blob", head)
        if self.corrupt.get(sha):
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = h.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                return self._send(h, 416, {"Content-Range": f"bytes */{len(data)}"}, b"", head)
        body = data[start:]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if head:
            return
        with self.lock:
            drop = self.drop_after.get(sha)
            cut = None
            if drop and drop[1] > 0:
                drop[1] -= 1
                cut = drop[0]
        if cut is not None:
            h.wfile.write(body[:cut])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the connection dies mid-body
            return
        h.wfile.write(body)
