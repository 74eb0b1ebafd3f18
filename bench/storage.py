"""Documents in a bucket against the same documents on local disk: N one-page documents
(synthetic pages of text, each with its own number, so no two share a content hash)
served by a real S3 API on 127.0.0.1 (moto's server, tests/s3server.py, in its own
process) and from a local folder, as the same job, side by side:

- fake engine, images not read: the coordinator alone (listing or walking, the store,
  the scheduler, the pool): tasks/s;
- fake engine reading each page: the workers' fetches (HEAD + GET into the object
  cache) and decoding too;
- Tesseract (the defaults, 2 workers): pages/s, the ratio bucket/local.

Each run is a fresh process with a fresh store and empty caches (page cache off, object
cache empty): every object is fetched. "loop" is the job's run time (submit discovers,
resume runs); "end to end" adds discovery and exports. With ``--rounds 2`` the second
round runs the bucket first (a shared machine drifts: read the ratios of both rounds).

Usage: python bench/storage.py [--docs 2000] [--engines fake,fake-read,tesseract]
                               [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FONT = REPO / "tests" / "data" / "fonts" / "DejaVuSans.ttf"
CONFIGS: dict[str, dict[str, Any]] = {
    "fake": {"engine": "fake", "engine_options": {"read_image": False}},
    "fake-read": {"engine": "fake", "engine_options": {"read_image": True}},
    "tesseract": {"engine": "tesseract"},
}


def make_pages(folder: Path, n: int) -> None:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), 28)
    folder.mkdir(parents=True)
    for i in range(n):
        im = Image.new("L", (1275, 420), 255)
        draw = ImageDraw.Draw(im)
        for ln in range(6):
            text = f"Document {i:05d}, line {ln + 1}: the quick brown fox jumps over the dog."
            draw.text((60, 40 + ln * 56), text, font=font, fill=0)
        im.save(folder / f"doc-{i:05d}.png", dpi=(150, 150))


def one(engine: str, source: str, tmp: Path, endpoint: str) -> dict[str, Any]:
    import ocrbatch

    where = "bucket" if source.startswith("s3://") else "local"
    run = tmp / f"{engine}-{where}-{time.monotonic_ns()}"
    os.environ["OCRBATCH_OBJECT_CACHE"] = str(run / "objects")  # empty: every object fetched
    db = f"sqlite:///{run}.db"
    config = {
        **CONFIGS[engine],
        "workers": 2,
        "cache_max_mb": 0,  # no page cache: each run reads its pages afresh
        "storage_options": {"endpoint_url": endpoint},
    }
    t0 = time.perf_counter()
    job = ocrbatch.submit([source], run / "out", db=db, config=config)
    t1 = time.perf_counter()
    summary = ocrbatch.resume(job, db=db)
    t2 = time.perf_counter()
    pages = summary["pages"]["completed"]
    assert pages == summary["pages"]["total"] and not summary["pages"]["failed"], summary
    return {
        "pages": pages,
        "discovery_s": t1 - t0,
        "loop_s": summary["total_time_s"],
        "end_to_end_s": t2 - t0,
    }


def start_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ready "), line
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def upload(folder: Path, endpoint: str) -> str:
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir("bench")
    files = sorted(folder.iterdir())
    for i in range(0, len(files), 200):
        fs.pipe({f"bench/pages/{f.name}": f.read_bytes() for f in files[i : i + 200]})
    return "s3://bench/pages/"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--engines", default="fake,fake-read,tesseract")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        engine, source, tmp, endpoint = args.child
        print(json.dumps(one(engine, source, Path(tmp), endpoint)))
        return
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server, endpoint = start_server()
    tmp = Path(tempfile.mkdtemp(prefix="ocrbatch-bench-storage-"))
    try:
        local = tmp / "pages"
        make_pages(local, args.docs)
        bucket = upload(local, endpoint)
        print(f"{args.docs} one-page documents, 2 workers, local S3 server {endpoint}")
        print(
            "| engine | source | pages | loop s | tasks/s (loop) | discovery s "
            "| end to end s | pages/s (end to end) |"
        )
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for engine, rnd in ((e, r) for e in args.engines.split(",") for r in range(args.rounds)):
            rates = {}
            sources = [("local disk", str(local)), ("bucket", bucket)]
            for name, source in sources[:: -1 if rnd % 2 else 1]:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", engine, source, str(tmp), endpoint],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=REPO,
                    env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rates[name] = r["pages"] / r["loop_s"]
                print(
                    f"| {engine} | {name} | {r['pages']} | {r['loop_s']:.1f} "
                    f"| {rates[name]:.1f} | {r['discovery_s']:.1f} | {r['end_to_end_s']:.1f} "
                    f"| {r['pages'] / r['end_to_end_s']:.1f} |",
                    flush=True,
                )
            ratio = rates["bucket"] / rates["local disk"]
            print(f"| {engine} | bucket / local (round {rnd + 1}) | | | {ratio:.3f} | | | |")
    finally:
        server.terminate()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
