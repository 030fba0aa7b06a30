"""Syncing N secrets with each backend, next to N bare client calls doing the same transfer.

    .venv/bin/python benchmarks/bench_sync.py                 # 1,000 secrets, 8 workers
    .venv/bin/python benchmarks/bench_sync.py --secrets 5000 --workers 16

Each backend runs on a local server started here (``bao server -dev`` and ``moto_server``, the
same helpers as the integration tests), so the figures measure our overhead over the SDK, not a
network. For each backend:

* **push**: a vault of N secrets synced to an empty remote (``Syncer.apply``: listing, local
  hashing, N check-and-set writes, batched saves of the bases and audit events), next to N bare
  writes of the same payloads with the same SDK on the same number of threads;
* **pull**: a fresh vault (the "second machine") synced from that remote, next to N bare reads;
* **in sync**: a plan with nothing to do, next to the bare listing it needs (KV v2 has no bulk
  read, so that is N reads there; AWS lists 100 per call).

It is a report, not a test: it prints the table and exits 0. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from its_desktop.core.crypto import Argon2Params  # noqa: E402
from its_desktop.core.secrets import Secret  # noqa: E402
from its_desktop.core.vault.api import Vault  # noqa: E402
from its_desktop.sync.payload import from_secret  # noqa: E402
from its_desktop.sync.remotes import add_remote, get_remote, make_remote  # noqa: E402
from its_desktop.sync.syncer import Syncer  # noqa: E402
from tests.integration.servers import ROOT_TOKEN, Server, start_moto, start_openbao  # noqa: E402

PASSWORD = "bench: correct horse battery staple"
FAST_KDF = Argon2Params(8 * 1024, 1, 1)  # unlocking is not what is measured here
REGION = "us-east-1"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def secrets(count: int) -> list[Secret]:
    return [Secret(name=f"brokers/b{i % 50}/acct{i:05d}", value=f"{i:05d}-" + "k" * 34,
                   fields={"username": f"trader{i}", "url": "https://api.example"}, tags={"env": "prod"})
            for i in range(count)]


def parallel(workers: int, fn: Callable[[int], object], count: int) -> None:
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(fn, range(count)):
            pass


class Row:
    def __init__(self, backend: str, what: str, ours: float, bare: float, bare_what: str) -> None:
        self.backend, self.what, self.ours, self.bare, self.bare_what = backend, what, ours, bare, bare_what


def bench_backend(kind: str, server: Server, folder: Path, count: int, workers: int) -> list[Row]:
    payloads = [from_secret(s).to_json() for s in secrets(count)]
    rows: list[Row] = []
    vaults = []
    try:
        a = Vault.create(folder / f"{kind}-a" / "vault.its", PASSWORD, kdf=FAST_KDF)
        b = Vault.create(folder / f"{kind}-b" / "vault.its", PASSWORD, kdf=FAST_KDF)
        vaults += [a, b]
        a.import_secrets(secrets(count), "bench")
        for vault in (a, b):
            if kind == "openbao":
                vault.set("creds/bao", ROOT_TOKEN)
                remote = make_remote("r", "openbao", "brokers/", "its/", {"url": server.url, "mount": "secret"},
                                     "token", "creds/bao")
            else:
                vault.set("creds/aws", "bench-secret", fields={"access_key_id": "AKIABENCH"})
                remote = make_remote("r", "aws", "brokers/", "its/", {"region": REGION, "endpoint_url": server.url},
                                     "aws-keys", "creds/aws")
            add_remote(vault, remote)

        write, read, listing, close = bare_client(kind, server, workers)
        try:
            log(f"{kind}: {count} bare writes")
            bare_write = timed(lambda: parallel(workers, lambda i: write(f"bare/{i:05d}", payloads[i]), count))
            log(f"{kind}: {count} bare reads")
            bare_read = timed(lambda: parallel(workers, lambda i: read(f"bare/{i:05d}"), count))
            log(f"{kind}: bare listing")
            bare_list = timed(listing)
        finally:
            close()

        def sync(vault: Vault) -> Syncer:
            return Syncer(vault, get_remote(vault, "r"), workers=workers)

        log(f"{kind}: push {count}")
        with sync(a) as syncer:
            push = timed(syncer.apply)
        log(f"{kind}: pull {count}")
        with sync(b) as syncer:
            pull = timed(syncer.apply)
        log(f"{kind}: plan with nothing to do")
        with sync(a) as syncer:
            noop = timed(syncer.plan)
        assert len(b.names()) == count + 1, "the pull did not bring every secret"
        listing_what = f"{count} reads" if kind == "openbao" else "ListSecrets pages"
        rows += [Row(kind, f"push {count} to an empty remote", push, bare_write, f"{count} writes"),
                 Row(kind, f"pull {count} into a fresh vault", pull, bare_read, f"{count} reads"),
                 Row(kind, f"plan, {count} already in sync", noop, bare_list, listing_what)]
    finally:
        for vault in vaults:
            vault.lock()
    return rows


def bare_client(kind: str, server: Server, workers: int):
    """write(key, payload), read(key), listing(), close() with the SDK alone."""
    if kind == "openbao":
        import threading

        import hvac

        local, clients = threading.local(), []

        def client():
            if not hasattr(local, "client"):
                local.client = hvac.Client(url=server.url, token=ROOT_TOKEN)
                clients.append(local.client)
            return local.client.secrets.kv.v2

        def write(key, payload):
            client().create_or_update_secret(path=f"its-bare/{key}", secret=payload, cas=0, mount_point="secret")

        def read(key):
            client().read_secret_version(path=f"its-bare/{key}", mount_point="secret", raise_on_deleted_version=False)

        def listing():
            keys = client().list_secrets(path="its-bare/bare/", mount_point="secret")["data"]["keys"]
            parallel(workers, lambda i: read(f"bare/{keys[i]}"), len(keys))

        def close():
            for c in clients:
                c.adapter.close()

        return write, read, listing, close

    import boto3
    import botocore.config

    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=server.url, aws_access_key_id="AKIABENCH",
                      aws_secret_access_key="bench-secret",
                      config=botocore.config.Config(max_pool_connections=max(10, workers * 2)))

    def write(key, payload):
        sm.create_secret(Name=f"its-bare/{key}", SecretString=json.dumps(payload))

    def read(key):
        sm.get_secret_value(SecretId=f"its-bare/{key}", VersionStage="AWSCURRENT")

    def listing():
        for _page in sm.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "name", "Values": ["its-bare/"]}], PaginationConfig={"PageSize": 100}):
            pass

    return write, read, listing, sm.close


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sync N secrets with OpenBao and AWS, next to bare SDK calls.")
    parser.add_argument("--secrets", type=int, default=1000, help="how many (default 1,000)")
    parser.add_argument("--workers", type=int, default=8, help="threads, for us and the bare client (default 8)")
    parser.add_argument("--only", choices=("openbao", "aws"), help="one backend")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="its-bench-sync-") as tmp:
        folder = Path(tmp)
        for kind, start in (("openbao", start_openbao), ("aws", start_moto)):
            if args.only and kind != args.only:
                continue
            log(f"starting the {kind} server")
            server = start(folder / kind)
            try:
                rows += bench_backend(kind, server, folder, args.secrets, args.workers)
            finally:
                server.stop()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Sync benchmark: {args.secrets} secrets, {args.workers} workers, local servers, load {load:.2f}, "
          f"{os.cpu_count()} cores")
    print(f"{'backend':<8} {'operation':<36} {'ours (s)':>9} {'bare SDK (s)':>13}  {'bare calls':<18} {'ours/bare':>9}")
    for row in rows:
        print(f"{row.backend:<8} {row.what:<36} {row.ours:>9.2f} {row.bare:>13.2f}  {row.bare_what:<18} "
              f"{row.ours / row.bare if row.bare else float('nan'):>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
