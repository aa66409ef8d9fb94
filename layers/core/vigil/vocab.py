"""Shared vocabulary for detections (Falco-style named sets and predicates, as plain Python)."""

from __future__ import annotations

from typing import Final

from vigil.events import Process, Stdio

SHELL_NAMES: Final = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "ash", "busybox", "mksh"}
)
INTERPRETER_NAMES: Final = frozenset(
    {
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "php",
        "node",
        "lua",
        "awk",
        "gawk",
        "tclsh",
        "socat",
        "nc",
        "ncat",
        "netcat",
        "telnet",
    }
)
NETWORK_SERVICE_NAMES: Final = frozenset(
    {
        "nginx", "httpd", "apache2", "lighttpd", "caddy", "java", "tomcat", "node", "php-fpm", "php-fpm8.2", "uwsgi", "gunicorn",
        "mysqld", "postgres", "redis-server", "mongod", "memcached", "named", "vsftpd", "proftpd", "dockerd", "containerd",
        "kubelet", "haproxy", "squid", "elasticsearch", "jenkins",
    }
)  # fmt: skip


def base_name(p: Process) -> str:
    """The program's name, from the exe path (argv[0] and comm can be set by the attacker)."""
    return p.file.name or p.name


def is_shell(p: Process) -> bool:
    name = base_name(p)
    if name in SHELL_NAMES:
        return True
    return name[-1:] in "0123456789." and name != "" and name.rstrip("0123456789.") in SHELL_NAMES


def is_network_socket(fd: Stdio | None) -> bool:
    return fd is not None and fd.type == "socket" and fd.family in ("inet", "inet6")


def stdio_on_network_socket(p: Process) -> bool:
    """A reverse shell's mark: its stdin or stdout is a TCP/UDP socket to a remote peer."""
    return is_network_socket(p.stdin) or is_network_socket(p.stdout)


def interactive_shell_flag(p: Process) -> bool:
    return "-i" in p.args[1:]


# --- sets and predicates added by the runtime detection pack ---------------------------------

PACKAGE_MANAGERS: Final = frozenset(
    {
        "dpkg", "apt", "apt-get", "aptitude", "unattended-upgrade", "unattended-upgr", "rpm", "yum", "dnf",
        "dnf-automatic", "microdnf", "zypper", "apk", "snapd", "packagekitd", "pacman", "dpkg-reconfigure",
        "dpkg-statoverride", "dpkg-trigger", "dpkg-divert", "update-alternatives", "needrestart",
    }
)  # fmt: skip
CONFIG_MANAGERS: Final = frozenset(
    {"cloud-init", "cloud-init-per", "chef-client", "puppet", "salt-minion", "salt-call", "ansible-playbook",
     "amazon-ssm-agent", "ssm-agent-worker", "ssm-document-worker", "ec2-instance-connect", "eic_run_authorized_keys"}
)  # fmt: skip
DEBUGGERS: Final = frozenset(
    {"gdb", "gdbserver", "lldb", "lldb-server", "strace", "ltrace", "valgrind", "perf", "rr", "criu", "bpftrace",
     "py-spy", "pyrasite", "dlv", "gcore", "pstack", "eu-stack", "sysdig", "pwndbg", "frida-server"}
)  # fmt: skip
# setuid-root programs that ordinary users run every day (ElevationToRoot excludes them)
ORDINARY_SETUID: Final = frozenset(
    {
        "sudo", "sudoedit", "su", "doas", "passwd", "chsh", "chfn", "gpasswd", "newgrp", "chage", "expiry", "mount",
        "umount", "fusermount", "fusermount3", "ping", "ping6", "traceroute6", "ssh-keysign", "unix_chkpwd",
        "dbus-daemon-launch-helper", "polkit-agent-helper-1", "pkexec", "Xorg.wrap", "at", "crontab", "newuidmap",
        "newgidmap", "mount.nfs", "mount.cifs", "snap-confine", "staprun", "ksu", "login", "sshd", "sshd-session",
        "cron", "crond", "systemd", "systemd-logind", "agetty", "runuser", "pam_timestamp_check", "userhelper",
        "vmware-user-suid-wrapper", "chrome-sandbox", "write", "wall", "lppasswd", "exim4", "sendmail", "postdrop",
    }
)  # fmt: skip
MINER_NAMES: Final = frozenset(
    {
        "xmrig", "xmrig-notls", "xmrig-cuda", "xmr-stak", "xmr-stak-cpu", "xmr-stak-rx", "cpuminer", "cpuminer-multi",
        "cpuminer-opt", "minerd", "cgminer", "bfgminer", "ethminer", "t-rex", "nbminer", "lolminer", "phoenixminer",
        "gminer", "teamredminer", "srbminer", "srbminer-multi", "nanominer", "ccminer", "claymore", "kdevtmpfsi",
        "kinsing", "xmrigminer", "moneroocean", "nheqminer", "ewbf-miner", "excavator", "wildrig", "bzminer",
    }
)  # fmt: skip
MINER_ARG_MARKERS: Final = ("stratum+tcp://", "stratum+ssl://", "stratum2+tcp://", "stratum+tls://", "--donate-level",
                            "--cpu-max-threads-hint", "--randomx-mode", "--algo=rx/0", "-a rx/0", "--coin=monero",
                            "--coin monero", "cryptonight")  # fmt: skip
DOWNLOADERS: Final = frozenset({"curl", "wget", "fetch", "lwp-download", "aria2c", "tftp", "ftp"})
LOG_WRITERS: Final = frozenset(
    {"logrotate", "rsyslogd", "syslog-ng", "systemd-journald", "journalctl", "auditd", "savelog", "newsyslog",
     "systemd-tmpfiles", "tmpfiles", "cloud-init", "amazon-cloudwatch-agent"}
)  # fmt: skip
LOGIN_RECORD_WRITERS: Final = frozenset(
    {"login", "sshd", "sshd-session", "systemd-logind", "agetty", "systemd", "systemd-update-utmp", "lastlog",
     "lastlog2", "su", "sudo", "screen", "tmux", "utempter", "gdm-session-worker", "lightdm", "init", "runlevel",
     "wtmpdb", "mingetty", "xrdp-sesman", "cron", "crond", "in.telnetd", "vsftpd", "proftpd", "dropbear"}
)  # fmt: skip
RUNC_BINARIES: Final = frozenset(
    {"/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc", "/usr/local/sbin/runc", "/usr/bin/docker-runc",
     "/usr/libexec/docker/docker-runc", "/bin/runc", "/sbin/runc", "/usr/bin/crun", "/usr/local/bin/crun"}
)  # fmt: skip
CONTAINER_RUNTIME_NAMES: Final = frozenset(
    {"runc", "runc:[0:PARENT]", "runc:[1:CHILD]", "runc:[2:INIT]", "crun", "containerd", "containerd-shim",
     "containerd-shim-runc-v2", "dockerd", "docker-init", "tini", "conmon", "podman", "kubelet", "buildkitd"}
)  # fmt: skip


def lineage_names(p: Process) -> frozenset[str]:
    """Program names of the ancestors (exe basename, else comm)."""
    return frozenset(base_name(a) for a in p.lineage)


def lineage_has(p: Process, names: frozenset[str]) -> bool:
    return any(base_name(a) in names for a in p.lineage)


def by_package_manager(p: Process) -> bool:
    """True for work done by a package manager or configuration management (their maintainer scripts)."""
    return (
        base_name(p) in PACKAGE_MANAGERS
        or base_name(p) in CONFIG_MANAGERS
        or lineage_has(p, PACKAGE_MANAGERS)
        or lineage_has(p, CONFIG_MANAGERS)
        or any(_config_script(a) for a in p.lineage if base_name(a).startswith("python"))
    )


def _config_script(a: Process) -> bool:
    """An interpreter running configuration management (cloud-init, ansible-playbook, salt-call, AnsiballZ modules)."""
    head = a.cmd_line[:300]
    if "cloud-init" in head or "AnsiballZ_" in head:
        return True
    return len(a.args) > 1 and a.args[1].rsplit("/", 1)[-1] in CONFIG_MANAGERS


def in_container(p: Process) -> bool:
    return p.container_uid != ""


def container_started_ns(p: Process) -> int:
    """When the container (approximately) started: the oldest ancestor seen in the same container.

    The agent bounds the lineage, so this may be later than the real start; comparisons against it
    err towards not firing.
    """
    start = p.created_time
    for a in p.lineage:
        if a.container_uid == p.container_uid and a.created_time and (start == 0 or a.created_time < start):
            start = a.created_time
    return start


def shell_command(p: Process) -> str:
    """The script of ``sh -c SCRIPT`` (and bash/dash/zsh), else ''."""
    args = p.args
    if len(args) >= 3 and is_shell(p):
        for i in range(1, len(args) - 1):
            a = args[i]
            if a == "-c" or (a.startswith("-") and not a.startswith("--") and "c" in a):
                return args[i + 1]
    return ""


# --- who ran it: an administrator's interactive session, or a service / scheduler ------------

LOGIN_PROGRAMS: Final = frozenset(
    {"sshd", "sshd-session", "login", "agetty", "mingetty", "tmux", "tmux: server", "screen", "ssm-session-worker",
     "mosh-server", "dropbear", "gdm-session-worker", "lightdm", "xrdp-sesman", "in.telnetd", "systemd-run"}
)  # fmt: skip
SCHEDULERS: Final = frozenset({"cron", "crond", "atd", "anacron", "fcron", "incrond"})
SERVICE_ACCOUNTS: Final = frozenset(
    {"www-data", "apache", "nginx", "httpd", "nobody", "tomcat", "jetty", "php-fpm", "mysql", "postgres", "redis",
     "jenkins", "elasticsearch", "git", "node", "daemon"}
)  # fmt: skip
WRITABLE_DIRS: Final = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/run/shm/", "/var/run/user/")

Session = str  # "service" | "interactive" | "other"


def is_service_program(name: str) -> bool:
    return name in NETWORK_SERVICE_NAMES or name.startswith("php-fpm") or name in SCHEDULERS


def session(p: Process) -> Session:
    """Who ran ``p``, from the nearest ancestor that says so (issue 17's context for severities).

    - ``"service"``: a network service (web, app or database server) or a scheduler (cron, atd) is
      the nearest such ancestor, or the process runs as a service account (www-data, nobody ...);
    - ``"interactive"``: the nearest such ancestor is a login program (sshd, login, tmux, SSM
      session) and the process, or an ancestor below that login, has a terminal;
    - ``"other"``: neither (systemd units, containers' entrypoints, an unknown lineage).
    """
    if p.user.name in SERVICE_ACCOUNTS:
        return "service"
    tty = p.tty != "" or (p.stdin is not None and p.stdin.type == "tty")
    for a in p.lineage:
        name = base_name(a)
        if is_service_program(name):
            return "service"
        if name in LOGIN_PROGRAMS:
            return "interactive" if tty else "other"
        if a.tty != "" or (a.stdin is not None and a.stdin.type == "tty"):
            tty = True
    return "other"


def in_writable_dir(path: str) -> bool:
    """A world-writable staging location (where droppers put what they download)."""
    return path.startswith(WRITABLE_DIRS)


def server_child(p: Process) -> bool:
    """A web/app/database server (or a service account) ran it: a web shell's or an exploited service's work."""
    return p.user.name in SERVICE_ACCOUNTS or any(
        base_name(a) in NETWORK_SERVICE_NAMES or base_name(a).startswith("php-fpm") for a in p.lineage
    )
