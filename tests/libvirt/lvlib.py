"""Helpers for the libvirt tests and the libvirt benchmark: the hosts' libvirt URIs,
what QEMU really runs there, and the memory-dirtying test guest."""
import os
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TERMINAL = ("completed", "error", "failed", "cancelled")


def uri(host):
    """host1 -> qemu+tcp://127.0.0.2/system (deploy/lib/libvirt-hosts)."""
    return f"qemu+tcp://127.0.0.{int(host[4:]) + 1}/system"


def virsh(host, *args, check=True):
    r = subprocess.run(["virsh", "-q", "-c", uri(host), *args], capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"virsh {' '.join(args)} on {host}: {r.stderr.strip()}")
    return r.stdout


def domains(host):
    """{uuid: state} of every domain libvirt has on host (running or defined)."""
    out = {}
    for name in virsh(host, "list", "--all", "--name").split():
        u = virsh(host, "domuuid", name).strip()
        out[u] = virsh(host, "domstate", name).strip()
    return out


def running_on(sid):
    """The hosts where QEMU runs the guest sid."""
    return sorted(h for h in ("host1", "host2") if domains(h).get(sid) == "running")


def images_dir(stack, host):
    shared = os.path.join(stack.state, "shared-instances")
    if os.path.isdir(shared):
        return shared
    return os.path.join(stack.state, "libvirt", host, "lib", "images")


def build_dirty_guest(state):
    """Assembles tests/libvirt/dirty-guest.S into state/dirty.elf (a path both
    libvirt daemons see)."""
    out = os.path.join(state, "dirty.elf")
    if not os.path.exists(out):
        obj = out + ".o"
        subprocess.run(["as", "--32", "--defsym", "DELAY=0", os.path.join(HERE, "dirty-guest.S"),
                        "-o", obj], check=True)
        subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0x100000", "-o", out, obj], check=True)
        os.unlink(obj)
    return out


def wait_until(pred, timeout, what):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
