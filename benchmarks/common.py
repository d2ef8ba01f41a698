"""Shared benchmark harness: timing, peak memory, environment record, JSON results.

Timing: a few warm-up calls, then repeated calls until ``min_time`` seconds have passed
(at least ``min_reps``); the median is reported (robust to the odd slow call), with the
minimum alongside. On CUDA every call is bracketed by ``torch.cuda.synchronize()`` and timed
with CUDA events, so the time is the device time of the launched kernels.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as _md
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PACKAGES = (
    "torch",
    "triton",
    "transformers",
    "rotary-embedding-torch",
    "torchtune",
    "liger-kernel",
    "numpy",
)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_fn(
    fn, *, device, warmup: int = 2, min_time: float = 0.2, min_reps: int = 3, max_reps: int = 200
) -> dict:
    """Median and minimum seconds per call of ``fn()``."""
    dev = torch.device(device)
    for _ in range(warmup):
        fn()
    sync(dev)
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (
        time.perf_counter() - start < min_time and len(times) < max_reps
    ):
        if dev.type == "cuda":
            t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            t0.record()
            fn()
            t1.record()
            t1.synchronize()
            times.append(t0.elapsed_time(t1) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return {
        "median_s": statistics.median(times),
        "min_s": min(times),
        "reps": len(times),
        "samples": times,
    }


#: A case is *noisy* when some implementation's median call took more than this many
#: times its fastest call: other jobs held the cores, and a ratio of medians there
#: measures the interference as much as the code.
NOISY_SPREAD = 2.0


def time_many(fns: dict, *, device, rounds: int = 3, min_time: float = 0.3) -> dict:
    """Time several callables round-robin (so background load hits them alike).

    Returns name -> {"median_s", "min_s", "reps", "spread"} over all samples of all
    rounds. The benchmarks compute their ratios from ``median_s``; ``spread`` =
    median / minimum says how far to trust that median: interference only adds time, so
    on a quiet machine it stays near 1, and far above 1 the median measures the load
    (see :data:`NOISY_SPREAD`).
    """
    samples = {name: [] for name in fns}
    for fn in fns.values():  # warm-up (and torch.compile) outside the timed rounds
        for _ in range(3):
            fn()
    sync(device)
    for _ in range(rounds):
        for name, fn in fns.items():
            tm = time_fn(fn, device=device, warmup=1, min_time=min_time / rounds, min_reps=3)
            samples[name].extend(tm.pop("samples"))
    return {
        name: {
            "median_s": statistics.median(v),
            "min_s": min(v),
            "reps": len(v),
            "spread": statistics.median(v) / min(v),
        }
        for name, v in samples.items()
    }


def peak_memory(fn, *, device) -> int | None:
    """Peak bytes allocated by ``fn()`` above what was allocated before (CUDA only)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated(dev) - base


def device_name(device) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_memory_bytes(device) -> int:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_properties(dev).total_memory
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def git_dirty() -> bool | None:
    """True if the working tree differs from the commit (results from uncommitted code)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return bool(out.strip())


def source_digest() -> str | None:
    """SHA-256 (16 hex digits) of the Python sources that ran: posenc_lib and benchmarks/.

    The commit and the dirty flag say *that* a tree differed from a commit, not how; a copy
    of the tree on another machine may also carry an older ``.git``. Two runs with the same
    digest ran the same code.
    """
    try:
        import posenc_lib
    except ImportError:
        return None
    digest = hashlib.sha256()
    for root in (Path(posenc_lib.__file__).parent, Path(__file__).resolve().parent):
        for f in sorted(root.rglob("*.py")):
            digest.update(str(f.relative_to(root.parent)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def environment(device) -> dict:
    dev = torch.device(device)
    return {
        "device": dev.type,
        "device_name": device_name(dev),
        "device_memory_bytes": device_memory_bytes(dev),
        "cpu_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "cuda": torch.version.cuda,
        "versions": versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
        "source_sha256": source_digest(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
    }


def shown(path: Path) -> str:
    """A path for a log: relative to the repository when inside it, else the file name
    (stored logs name no machine's folders)."""
    try:
        return str(Path(path).resolve().relative_to(RESULTS_DIR.parent.parent))
    except ValueError:
        return Path(path).name


def result_path(device, *, tag: str = "") -> Path:
    day = _dt.date.today().isoformat()
    return RESULTS_DIR / f"{torch.device(device).type}{tag}-{day}.json"


def save(results: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
    return path


def load_latest(device: str = "cpu") -> dict:
    """The most recent full run for a device type ("cpu" or "cuda").

    Only ``<device>-<YYYY-MM-DD>.json`` counts: tagged files (``cuda-eager-...``,
    ``cpu-quiet-...``) hold other, smaller runs and sort after the dated ones.
    """
    files = sorted(RESULTS_DIR.glob(f"{device}-[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9].json"))
    if not files:
        raise FileNotFoundError(f"no stored results for {device!r} in {RESULTS_DIR}")
    return json.loads(files[-1].read_text())


def optional_import(name: str):
    """Import a peer library, or return (None, reason)."""
    try:
        return __import__(name, fromlist=["_"]), None
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return None, f"{type(exc).__name__}: {exc}"
