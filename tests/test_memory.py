"""How much memory the kit may take: every limit read from made-up /proc and /sys trees (cgroup v2
and v1 with their parents, RLIMIT_AS, RLIMIT_DATA, MemAvailable), the smallest taken, and
translate's tiles planned within it."""

import resource

import pytest

from replication import memory, tiling

GB = 2**30
MOUNTS = {
    "v2": "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw\n",
    "v1": "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n",
}


def no_rlimits(which):
    return resource.RLIM_INFINITY, resource.RLIM_INFINITY


def rlimits(**soft):
    """A getrlimit with these soft limits (AS=..., DATA=...), the others unlimited."""
    by_number = {getattr(resource, f"RLIMIT_{name}"): value for name, value in soft.items()}
    return lambda which: (by_number.get(which, resource.RLIM_INFINITY), resource.RLIM_INFINITY)


def proc(root, available=16 * GB, cgroup="0::/\n", mounts="", status=""):
    """/proc of a made-up machine: MemAvailable, this process's cgroups and mounts, its status."""
    (root / "proc" / "self").mkdir(parents=True, exist_ok=True)
    (root / "proc" / "meminfo").write_text(f"MemTotal:       33554432 kB\nMemAvailable:   {available // 1024} kB\n")
    (root / "proc" / "self" / "cgroup").write_text(cgroup)
    (root / "proc" / "self" / "mountinfo").write_text("23 1 0:21 / / rw - ext4 /dev/root rw\n" + mounts)
    (root / "proc" / "self" / "status").write_text(status or "Name:\tpython\nVmSize:\t 2097152 kB\nVmData:\t 1048576 kB\n")
    return root


def cgroup(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("_", ".", 1)).write_text(f"{text}\n")


def test_only_memavailable_applies_without_limits(tmp_path):
    root = proc(tmp_path, available=12 * GB)
    assert memory.limits(root, no_rlimits) == {"MemAvailable": 12 * GB}
    assert memory.free_memory(root, no_rlimits) == 12 * GB


def test_cgroup_v2_the_least_left_under_its_own_and_each_parents_memory_max(tmp_path):
    """The job's own cgroup has no limit ("max"); its parent's 3 GB, of which 1.5 GB is held, 0.25 GB
    of that page cache the kernel may drop; the grandparent's 8 GB is looser."""
    root = proc(tmp_path, cgroup="0::/slurm/job_7/step_0\n", mounts=MOUNTS["v2"])
    top = root / "sys" / "fs" / "cgroup"
    cgroup(top / "slurm", memory_max=8 * GB, memory_current=4 * GB)
    cgroup(top / "slurm" / "job_7", memory_max=3 * GB, memory_current=int(1.5 * GB), **{"memory_stat": f"anon 1\ninactive_file {GB // 4}"})
    cgroup(top / "slurm" / "job_7" / "step_0", memory_max="max", memory_current=GB)
    assert memory.cgroup_v2_left(root) == int(1.75 * GB)
    assert memory.limits(root, no_rlimits) == {"MemAvailable": 16 * GB, "cgroup v2 memory.max": int(1.75 * GB)}


def test_cgroup_v1_a_parents_limit_counts_and_unlimited_is_a_huge_number(tmp_path):
    root = proc(tmp_path, cgroup="5:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/\n", mounts=MOUNTS["v1"])
    top = root / "sys" / "fs" / "cgroup" / "memory"
    cgroup(top, memory_limit_in_bytes=9223372036854771712, memory_usage_in_bytes=20 * GB, memory_use_hierarchy=1)
    cgroup(top / "docker", memory_limit_in_bytes=2 * GB, memory_usage_in_bytes=GB // 2, memory_use_hierarchy=1,
           **{"memory_stat": f"cache 5\ntotal_inactive_file {GB // 2}"})
    cgroup(top / "docker" / "abc", memory_limit_in_bytes=9223372036854771712, memory_usage_in_bytes=GB // 4, memory_use_hierarchy=1)
    assert memory.limits(root, no_rlimits) == {"MemAvailable": 16 * GB, "cgroup v1 memory.limit_in_bytes": 2 * GB}
    (top / "docker" / "memory.use_hierarchy").write_text("0\n")  # a parent that does not count its children's memory
    (top / "docker" / "abc" / "memory.limit_in_bytes").write_text(f"{GB}\n")
    assert memory.cgroup_v1_left(root) == GB - GB // 4


def test_cgroup_v1_inside_a_container_reads_the_mounted_cgroup_itself(tmp_path):
    """Docker mounts the container's own cgroup at /sys/fs/cgroup/memory; /proc/self/cgroup names its full path."""
    root = proc(tmp_path, cgroup="4:memory:/docker/abc\n",
                mounts="35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n")
    cgroup(root / "sys" / "fs" / "cgroup" / "memory", memory_limit_in_bytes=2 * GB, memory_usage_in_bytes=GB)
    assert memory.cgroup_v1_left(root) == GB


@pytest.mark.parametrize("name, limit, field", [("RLIMIT_AS (ulimit -v)", "AS", "VmSize"), ("RLIMIT_DATA (ulimit -d)", "DATA", "VmData")])
def test_a_resource_limit_counts_what_the_process_holds_already(tmp_path, name, limit, field):
    root = proc(tmp_path, status=f"Name:\tpython\n{field}:\t 2097152 kB\n")  # 2 GB mapped (or data) already
    limits = memory.limits(root, rlimits(**{limit: 8 * 10**9}))
    assert limits == {"MemAvailable": 16 * GB, name: 8 * 10**9 - 2 * GB}
    assert memory.free_memory(root, rlimits(**{limit: 8 * 10**9})) == 8 * 10**9 - 2 * GB


@pytest.mark.parametrize("source", ["MemAvailable", "cgroup v2", "cgroup v1", "RLIMIT_AS", "RLIMIT_DATA"])
def test_tiles_are_planned_within_the_smallest_limit_whichever_it_is(tmp_path, monkeypatch, source):
    """Each source in turn leaves 4 GB (the others 16 GB or none): a 6000x6000 photo is tiled to fit half of it."""
    root = proc(tmp_path, available=4 * GB if source == "MemAvailable" else 16 * GB, cgroup="4:memory:/job\n0::/job\n",
                mounts=MOUNTS["v2"] + MOUNTS["v1"].replace("/sys/fs/cgroup/memory", "/sys/fs/cgroup/v1memory"),
                status="Name:\tpython\nVmSize:\t 1048576 kB\nVmData:\t 1048576 kB\n")
    if source == "cgroup v2":
        cgroup(root / "sys" / "fs" / "cgroup" / "job", memory_max=6 * GB, memory_current=2 * GB)
    if source == "cgroup v1":
        cgroup(root / "sys" / "fs" / "cgroup" / "v1memory" / "job", memory_limit_in_bytes=5 * GB, memory_usage_in_bytes=GB)
    getrlimit = rlimits(**{source.split("_")[-1]: 5 * GB}) if source.startswith("RLIMIT") else no_rlimits
    assert memory.free_memory(root, getrlimit) == 4 * GB
    monkeypatch.setattr(tiling, "free_memory", lambda: memory.free_memory(root, getrlimit))
    per_pixel = 8400 * tiling.ACTIVATION_MARGIN  # about the paper's ResNet-9 at ngf 64
    plan = tiling.Memory(int(tiling.MEMORY_SHARE * tiling.free_memory()), per_pixel).plan(6000, 6000, 4, 8)
    th, tw = plan.tile
    assert tiling.IMAGE_BYTES_PER_PIXEL * 6000**2 + per_pixel * th * tw <= 2 * GB
    assert plan.tile != plan.padded and min(th, tw) >= 128


def test_a_failed_allocation_is_told_apart_from_other_errors():
    import tensorflow as tf

    assert memory.out_of_memory(MemoryError())
    assert memory.out_of_memory(tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[1,64,4000,4000]"))
    assert memory.out_of_memory(tf.errors.AbortedError(None, None, "Operation received an exception:Status: 1, message: could not create a primitive, in file tensorflow/core/kernels/mkl/mkl_conv_ops.cc:1137"))
    assert memory.out_of_memory(tf.errors.InternalError(None, None, "could not create a primitive"))
    assert not memory.out_of_memory(tf.errors.AbortedError(None, None, "Collective ops is aborted"))
    assert not memory.out_of_memory(tf.errors.InvalidArgumentError(None, None, "shapes differ"))
    assert not memory.out_of_memory(ValueError("could not create a primitive"))
