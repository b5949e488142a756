"""What every benchmark shares: the kit on the import path, the machine a result was measured on,
and the results file named after it (bench/results/<name>.json, written atomically).

A benchmark script imports this first (`import common`: a script's own folder is on its path).
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from replication.files import atomic_write_text  # noqa: E402  (no TensorFlow in a parent process)


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or "CPU"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "CPU")


def device_name(tf) -> str:
    """The first GPU's name, else the CPU's."""
    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else cpu_model()


def vector_unit(flags) -> str:
    """The widest vector instructions the CPU has: part of the results file's name, so two kinds of one CPU name differ."""
    return next((name for name in ("avx512_bf16", "avx512f", "avx2") if name in flags), "")


def results_machine(tf) -> dict:
    """What `machine_slug` names a results file by: the device, the GPUs, the CPUs and their vector unit."""
    from replication.speed import machine

    return {"device": device_name(tf), "gpu_count": len(tf.config.list_physical_devices("GPU")),
            "cpus": os.cpu_count(), "vector_unit": vector_unit(machine.detect().cpu_flags)}


def machine_slug(info: dict) -> str:
    """The results file's name: a GPU's name and count, or a CPU's name, vector unit and cores (two kinds
    of one CPU name, e.g. AMD EPYC Zen 3 and Zen 4, keep separate files)."""
    name = re.sub(r"[^a-z0-9]+", "-", info["device"].lower()).strip("-")
    if info["gpu_count"]:
        return f"{name}-{info['gpu_count']}gpu"
    vector = info.get("vector_unit", "").replace("_", "-")
    return f"{name}-{vector + '-' if vector else ''}{info['cpus']}cpu"


def write_results(out_dir, name: str, result: dict) -> Path:
    """`result` as bench/results/<name>.json (or under `out_dir`), written atomically."""
    out = Path(out_dir) / f"{name}.json"
    atomic_write_text(out, json.dumps(result, indent=2) + "\n")
    return out
