"""A private one-node Slurm on 127.0.0.1 for the tests: ``munged``, ``slurmctld`` and ``slurmd``.

Everything lives in one temporary folder: the munge key and socket, ``slurm.conf``, the state,
spool, log and pid files. Clients find it through ``SLURM_CONF``, and its ports are free ones
picked at start, so a Slurm already running on the machine (the system's, or one left by another
test session) is neither used nor in the way. The daemons and the jobs run as root. Debian's
``slurm-wlm`` and ``munge`` packages provide the programs; ``.ci/run`` installs them where it can.

A test session killed outright leaves its folder, and job processes that wait for the Slurm that
ran them (its daemons get SIGTERM when the session dies, where ``setpriv`` is installed): the next
session's :func:`running` ends them and removes the folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

INSTALL = "apt-get install slurm-wlm munge"
PREFIX = "xrfdask-slurm-"  # the folders, in the temporary directory
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel")  # dask-jobqueue calls them by name
TIMEOUT = 30  # s, for the node to come up and for jobs to leave at the end

SLURM_CONF = """\
ClusterName=xrfdask-test
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
# No cgroups, accounting or MPI: nothing outside the folder is needed.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
KillWait=5
ReturnToService=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The node as configured, whatever the hardware: room for two 1-core, 2 GiB jobs anywhere.
SlurmdParameters=config_overrides
NodeName={node} NodeAddr=127.0.0.1 CPUs=4 RealMemory=8192 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _which(name: str) -> str | None:
    # The daemons are in /usr/sbin, which is not on every PATH.
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))


def missing() -> str | None:
    """Why a private Slurm cannot run here, or None when it can.

    Returns
    -------
    str or None
        A reason that names what is missing (programs, or root), for ``pytest.skip``.
    """
    absent = [name for name in DAEMONS if _which(name) is None]
    absent += [name for name in CLIENTS if shutil.which(name) is None]
    if absent:
        return f"{', '.join(absent)} not found: {INSTALL} (as root) to run this test"
    if os.geteuid() != 0:
        return "not root: a private Slurm runs munged, slurmctld and slurmd as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


class Slurm:
    """A private Slurm in ``folder``: start it with :meth:`start`, end it with :meth:`stop`.

    Parameters
    ----------
    folder : pathlib.Path
        An empty, private folder for all of its files.

    Attributes
    ----------
    conf : pathlib.Path
        Its ``slurm.conf``: point clients to it with ``SLURM_CONF``.
    env : dict
        ``os.environ`` with ``SLURM_CONF`` set, for its commands.
    node : str
        The name of its one node (this host's short name, which slurmctld requires).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.conf = folder / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.node = socket.gethostname().split(".")[0]
        self.procs: dict[str, subprocess.Popen] = {}

    def command(self, *args: str) -> str:
        """Run a Slurm client command (``squeue``...) against this Slurm; its output."""
        return subprocess.run(
            args, env=self.env, capture_output=True, text=True, check=True, timeout=TIMEOUT
        ).stdout

    def jobs(self) -> dict[str, str]:
        """The jobs in the queue: {job id: state}, e.g. ``{"3": "RUNNING"}``."""
        out = self.command("squeue", "--noheader", "--format=%i %T")
        return dict(line.split() for line in out.splitlines() if line.strip())

    def _spawn(self, name: str, *args: str) -> None:
        # With setpriv, a daemon gets SIGTERM when the test process dies without cleaning up
        # (killed outright, a CI timeout), instead of running on as root.
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM"] if setpriv else []
        with open(self.folder / f"{name}.out", "wb") as out:
            self.procs[name] = subprocess.Popen(
                [*prefix, _which(name), *args],
                env=self.env, cwd=self.folder, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            )  # fmt: skip

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {path.name}:\n{_tail(path)}"
                    for name in self.procs
                    for path in (self.folder / f"{name}.out", self.folder / f"{name}.log")
                    if path.exists()
                )
                why = f"{', '.join(dead)} exited" if dead else f"no {what} in {TIMEOUT} s"
                raise RuntimeError(f"private Slurm in {self.folder}: {why}\n{logs}")
            time.sleep(0.1)

    def start(self) -> None:
        """Start munged, slurmctld and slurmd; return once the node is idle.

        Raises
        ------
        RuntimeError
            A daemon exited or the node did not come up; the message holds their logs' ends.
        """
        folder = self.folder
        for sub in ("state", "spool"):
            (folder / sub).mkdir()
        key = folder / "munge.key"
        key.write_bytes(os.urandom(128))  # what mungekey -c writes, on any munge version
        key.chmod(0o600)
        # --force: munged refuses a socket that other users cannot reach (the folder is
        # private); every client here is root.
        self._spawn(
            "munged", "--foreground", "--force", f"--socket={folder}/munge.socket",
            f"--key-file={key}", f"--pid-file={folder}/munged.pid",
            f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed",
        )  # fmt: skip
        self._wait((folder / "munge.socket").exists, "munge socket")
        self.conf.write_text(
            SLURM_CONF.format(
                node=self.node, folder=folder, ctld_port=_free_port(), slurmd_port=_free_port()
            )
        )
        self._spawn("slurmctld", "-D")
        self._spawn("slurmd", "-D", "-N", self.node)

        def idle() -> bool:
            try:
                state = self.command("sinfo", "--noheader", "--Node", "--format=%T")
            except subprocess.CalledProcessError:  # slurmctld not listening yet
                return False
            return state.strip() == "idle"

        self._wait(idle, "idle node")

    def stop(self) -> None:
        """Cancel the jobs, stop the daemons, and end any job process left (by its pid)."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            try:
                if jobs := self.jobs():
                    self.command("scancel", *jobs)
                deadline = time.monotonic() + TIMEOUT
                while self.jobs() and time.monotonic() < deadline:
                    time.sleep(0.2)
            except (subprocess.SubprocessError, OSError):
                pass  # stopping the daemons matters more
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs.values()):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        self.kill_leftovers()

    def kill_leftovers(self) -> None:
        """SIGKILL every process left of this Slurm, found by the ``SLURM_CONF`` it carries.

        The daemons, ``slurmstepd`` and the job processes have it in their environment, and the
        path is this Slurm's own; the calling process is spared.
        """
        mark = f"SLURM_CONF={self.conf}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            if int(pid) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                if mark in environ:
                    os.kill(int(pid), signal.SIGKILL)
            except OSError:  # gone meanwhile, or not ours to read
                continue


@contextlib.contextmanager
def running() -> Iterator[Slurm]:
    """A private Slurm for the duration of the ``with`` block, its folder removed after.

    Yields
    ------
    Slurm
        Started, its node idle; at exit its jobs are cancelled and its daemons stopped.
    """
    _remove_stale()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    slurm = Slurm(folder)
    lock = open(folder / "lock", "w")  # held, locked, for the whole block
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when this process ends, however it ends
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()
        shutil.rmtree(folder, ignore_errors=True)
        lock.close()


def _remove_stale() -> None:
    """End what is left of private Slurms whose test session died: their folders' locks are free."""
    for folder in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            with open(folder / "lock") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                Slurm(folder).kill_leftovers()
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # in use (locked), not ours, or gone meanwhile
            continue
