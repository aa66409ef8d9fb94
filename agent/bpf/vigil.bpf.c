// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * vigil-agent's eBPF sensor: one compact record per exec, exit, connect and accept.
 *
 * Why: the audit stream spends 3-6 text records per exec or connect that the agent must read,
 * split and reassemble in Python; here the kernel hands over one fixed-layout record, already
 * carrying what the agent used to read from /proc afterwards (argv, environment, cwd, exe inode
 * and mtime, the targets of fds 0/1/2, the socket's local end, cgroup, tty). The layouts below
 * are mirrored by agent/vigil_agent/bpfsensor.py (checked there against the record sizes).
 *
 * CO-RE: types come from the build host's BTF (vmlinux.h) and are relocated by libbpf against
 * the running kernel's /sys/kernel/btf/vmlinux, so one object runs on any BTF kernel >= 5.8.
 * Attach points are tracepoints only (no kprobes, no fentry): sched_process_exec/exit and the
 * connect/accept/accept4/listen/openat/mmap syscall tracepoints (openat only for /proc/<pid>/mem
 * opened for writing: process injection through procfs, which audit cannot watch; mmap only for
 * a file's first executable mapping in a cgroup: library loads).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#define ARGS_MAX 4096 /* argv bytes kept, less one (NUL separated, as in /proc/<pid>/cmdline) */
#define ENV_MAX 4096  /* environment bytes kept, less one (LD_PRELOAD / LD_LIBRARY_PATH are read from it) */
#define PATH_BUF 1024 /* a path as its components, leaf first, NUL terminated each */
#define NAME_MAX_ 256
#define WALK_DEPTH 48
#define UNIX_PATH 108

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define EINPROGRESS 115
#define S_IFMT 0170000
#define S_IFSOCK 0140000

enum kind { EV_EXEC = 1, EV_EXIT = 2, EV_CONNECT = 3, EV_ACCEPT = 4, EV_LISTEN = 5, EV_PROC_MEM = 6, EV_LIB = 7 };
enum flags {
	F_EXE_UNLINKED = 1,  /* the executable has no link left (memfd, deleted binary) */
	F_ARGS_TRUNC = 2,    /* argv longer than ARGS_MAX */
	F_ENV_TRUNC = 4,     /* environment longer than ENV_MAX */
	F_EXE_TRUNC = 8,     /* exe path deeper / longer than the walk */
	F_CWD_TRUNC = 16,
};

struct hdr {
	u32 kind;
	u32 pid; /* tgid */
	u32 tid;
	u32 ppid; /* real parent's tgid */
	u64 time_ns;  /* CLOCK_BOOTTIME */
	u64 start_ns; /* the process's start, CLOCK_BOOTTIME (what /proc/<pid>/stat's starttime counts) */
	u32 uid, euid, gid, egid;
	char comm[16];
}; /* 64 bytes */

struct fdinfo {
	u32 mode; /* i_mode: file type in S_IFMT; 0 = no such fd */
	u32 rdev; /* char devices: kernel dev_t (major << 20 | minor) */
	u64 ino;
	u16 family; /* sockets */
	u16 type;
	u16 lport;
	u16 rport;
	u8 laddr[16];
	u8 raddr[16];
	char name[112]; /* unix sockets: the bound or peer path; else the dentry's name */
}; /* 168 bytes */

struct exec_ev {
	struct hdr h;
	u64 exe_ino;
	s64 exe_size;
	s64 exe_mtime_sec;
	u32 exe_mtime_nsec;
	u32 exe_dev;
	u32 ns_pid; /* the pid in the process's own pid namespace (containers) */
	u32 flags;
	u32 args_len;
	u32 env_len;
	u32 exe_len;
	u32 cwd_len;
	struct fdinfo fds[3];
	char tty[32];
	char cgroup[128]; /* the leaf name of the process's cgroup (v2, else v1 memory): a container id */
	char exe[PATH_BUF];
	char cwd[PATH_BUF];
	char data[ARGS_MAX + ENV_MAX]; /* argv (args_len bytes), then the environment (env_len bytes) */
};

struct exit_ev {
	struct hdr h;
	s32 code; /* exit_code as wait(2) reports it */
	u32 pad;
};

struct net_ev {
	struct hdr h;
	s32 ret; /* the syscall's return: 0 / -EINPROGRESS / fd for accept, or -errno */
	u16 family;
	u16 type;
	u16 lport;
	u16 rport;
	u32 fd;
	u8 laddr[16];
	u8 raddr[16];
	char path[112]; /* unix connect: sun_path; proc_mem: the /proc/<pid>/mem path */
};

struct lib_ev {
	struct hdr h;
	u64 ino;
	s64 size;
	s64 mtime_sec;
	u32 mtime_nsec;
	u32 dev;
	u32 path_len;
	u32 flags; /* F_EXE_UNLINKED, F_EXE_TRUNC: of this file */
	char path[PATH_BUF];
};

struct config {
	u32 agent_tgid;     /* never report the agent itself */
	u32 unix_all;       /* report every unix connect, not only the listed paths */
	u32 connect_failed; /* report refused/failed connects too */
	u32 pad;
};

struct conn_args {
	u64 addr;
	u32 fd;
	u32 addrlen;
};

/* 2 MiB: the agent drains it every 50 ms; an exec takes ~3-5 KiB, a connect 224 bytes. It is
 * mapped into the agent, so its size is part of the agent's RSS. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20);
} events SEC(".maps");

/* an exec record is built here, then only its used length goes into the ring */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct exec_ev);
} exec_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct config);
} settings SEC(".maps");

/* records the ring had no room for: the agent reports them as lost */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* unix socket paths worth an event (docker.sock, containerd.sock, ...), zero padded */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[UNIX_PATH]);
	__type(value, u8);
} unix_paths SEC(".maps");

/* connect()'s arguments from syscall entry to exit, by thread */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct conn_args);
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, char[UNIX_PATH]);
} scratch SEC(".maps");

/* listen()'s fd from syscall entry to exit, by thread */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, u32);
} listening SEC(".maps");

/* files already reported as mapped executable, per cgroup: a library is reported on its first
 * load in each cgroup (container, service), not on every process start */
struct lib_key {
	u64 cgroup;
	u64 ino;
	u32 dev;
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct lib_key);
	__type(value, u8);
} libs_seen SEC(".maps");

#define PROC_MEM_PATH 32
/* openat() of /proc/<pid>/mem for writing, from syscall entry to exit, by thread */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, char[PROC_MEM_PATH]);
} opening_mem SEC(".maps");

/* inode timestamps moved twice: i_mtime (< 6.6), __i_mtime (6.6-6.10), i_mtime_sec (6.11+) */
struct inode___v66 {
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));
struct inode___v50 {
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

static __always_inline const struct config *cfg(void)
{
	u32 zero = 0;
	return bpf_map_lookup_elem(&settings, &zero);
}

static __always_inline void count_lost(void)
{
	u32 zero = 0;
	u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		*n += 1;
}

static __always_inline void fill_hdr(struct hdr *h, u32 kind, struct task_struct *t)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 ug = bpf_get_current_uid_gid();
	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->time_ns = bpf_ktime_get_boot_ns();
	h->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	h->uid = (u32)ug;
	h->gid = ug >> 32;
	h->euid = BPF_CORE_READ(t, cred, euid.val);
	h->egid = BPF_CORE_READ(t, cred, egid.val);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

struct pathbuf {
	char buf[PATH_BUF];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct pathbuf);
} path_scratch SEC(".maps");

struct walk {
	struct dentry *d;
	struct vfsmount *vm;
	struct mount *mnt;
	struct dentry *root_d;
	struct vfsmount *root_vm;
	u32 off;
	u32 trunc;
};

/* one step of walk_path (a bpf_loop callback: verified once, not once per step) */
static long walk_step(u32 i, void *vctx)
{
	struct walk *w = vctx;
	u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 1;
	struct dentry *d = w->d;
	struct vfsmount *vm = w->vm;
	struct mount *mnt = w->mnt;
	if (d == w->root_d && vm == w->root_vm)
		return 1;
	struct dentry *mnt_root = BPF_CORE_READ(vm, mnt_root);
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt || !up)
			return 1; /* the global root (or a detached mount) */
		w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		w->vm = __builtin_preserve_access_index(&up->mnt);
		return 0;
	}
	u32 off = w->off;
	if (off > PATH_BUF - NAME_MAX_) {
		w->trunc = 1;
		return 1;
	}
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	long n = bpf_probe_read_kernel_str(pb->buf + (off & (PATH_BUF - 1)), NAME_MAX_, name);
	if (n <= 0)
		return 1;
	w->off = off + (u32)n;
	if (parent == d || !parent)
		return 1; /* a pseudo file: its name is the whole path */
	w->d = parent;
	if (i == WALK_DEPTH - 1)
		w->trunc = 1;
	return 0;
}

/*
 * The path of (dentry, vfsmount) as d_path() prints it relative to the task's root, as its
 * components leaf first ("sh\0bin\0"): crossing mount points, stopping at the task's root (so a
 * container's process shows its own paths), and at a pseudo file's own name (memfd:x).
 * Copies it to buf; returns the bytes used. *trunc is set when the walk ran out of depth or room.
 */
static __always_inline u32 walk_path(struct dentry *d, struct vfsmount *vm, struct dentry *root_d,
				     struct vfsmount *root_vm, char *buf, u32 *trunc)
{
	struct walk w = {
		.d = d,
		.vm = vm,
		.mnt = container_of(vm, struct mount, mnt),
		.root_d = root_d,
		.root_vm = root_vm,
	};
	bpf_loop(WALK_DEPTH, walk_step, &w, 0);
	u32 zero = 0;
	struct pathbuf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	if (!pb)
		return 0;
	u32 off = w.off;
	if (off > PATH_BUF)
		off = PATH_BUF;
	bpf_probe_read_kernel(buf, off & (PATH_BUF * 2 - 1), pb->buf);
	*trunc = w.trunc;
	return off;
}

static __always_inline void fill_sock(struct socket *sock, u16 *family, u16 *type, u16 *lport, u16 *rport,
				      u8 *laddr, u8 *raddr, char *name)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	*type = BPF_CORE_READ(sock, type);
	u16 fam = BPF_CORE_READ(sk, __sk_common.skc_family);
	*family = fam;
	if (fam == AF_INET) {
		BPF_CORE_READ_INTO((u32 *)laddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((u32 *)raddr, sk, __sk_common.skc_daddr);
	} else if (fam == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr *)laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)raddr, sk, __sk_common.skc_v6_daddr);
	} else if (fam == AF_UNIX && name) {
		struct unix_sock *u = (struct unix_sock *)sk;
		struct unix_address *a = BPF_CORE_READ(u, addr);
		if (!a) {
			struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ(u, peer);
			if (peer)
				a = BPF_CORE_READ(peer, addr);
		}
		if (a)
			bpf_probe_read_kernel(name, UNIX_PATH, __builtin_preserve_access_index(&a->name[0].sun_path));
		return;
	} else {
		return;
	}
	*lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	*rport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
}

static __always_inline void read_mtime(struct inode *inode, s64 *sec, u32 *nsec)
{
	if (bpf_core_field_exists(inode->i_mtime_sec)) {
		*sec = BPF_CORE_READ(inode, i_mtime_sec);
		*nsec = BPF_CORE_READ(inode, i_mtime_nsec);
	} else if (bpf_core_field_exists(((struct inode___v66 *)inode)->__i_mtime)) {
		*sec = BPF_CORE_READ((struct inode___v66 *)inode, __i_mtime.tv_sec);
		*nsec = BPF_CORE_READ((struct inode___v66 *)inode, __i_mtime.tv_nsec);
	} else {
		*sec = BPF_CORE_READ((struct inode___v50 *)inode, i_mtime.tv_sec);
		*nsec = BPF_CORE_READ((struct inode___v50 *)inode, i_mtime.tv_nsec);
	}
}

static __always_inline struct file *fd_file(struct task_struct *t, u32 fd)
{
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **arr = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
	return f;
}

static __always_inline void fill_fd(struct task_struct *t, u32 n, struct fdinfo *out)
{
	struct file *f = fd_file(t, n);
	if (!f)
		return;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	out->mode = BPF_CORE_READ(inode, i_mode);
	out->rdev = BPF_CORE_READ(inode, i_rdev);
	out->ino = BPF_CORE_READ(inode, i_ino);
	if ((out->mode & S_IFMT) == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(f, private_data);
		fill_sock(sock, &out->family, &out->type, &out->lport, &out->rport, out->laddr, out->raddr, out->name);
		return;
	}
	const unsigned char *name = BPF_CORE_READ(f, f_path.dentry, d_name.name);
	bpf_probe_read_kernel_str(out->name, sizeof(out->name), name);
}

/* up to max - 1 bytes of user memory [start, end) (max a power of two) */
static __always_inline u32 read_user_block(char *dst, u64 start, u64 end, u32 max, u32 *trunc)
{
	if (end <= start)
		return 0;
	u64 len = end - start;
	if (len > max - 1) {
		len = max - 1;
		*trunc = 1;
	}
	len &= max - 1;
	if (bpf_probe_read_user(dst, len, (void *)start))
		return 0;
	return len;
}

SEC("tracepoint/sched/sched_process_exec")
int vigil_exec(void *ctx)
{
	const struct config *c = cfg();
	if (!c)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	u32 zero = 0;
	struct exec_ev *e = bpf_map_lookup_elem(&exec_scratch, &zero);
	if (!e)
		return 0;
	__builtin_memset(e, 0, offsetof(struct exec_ev, exe));
	fill_hdr(&e->h, EV_EXEC, t);

	struct mm_struct *mm = BPF_CORE_READ(t, mm);
	u32 trunc = 0;
	u32 args_len = read_user_block(e->data, BPF_CORE_READ(mm, arg_start), BPF_CORE_READ(mm, arg_end), ARGS_MAX, &trunc);
	e->args_len = args_len;
	if (trunc)
		e->flags |= F_ARGS_TRUNC;
	trunc = 0;
	e->env_len = read_user_block(e->data + (args_len & (ARGS_MAX - 1)), BPF_CORE_READ(mm, env_start),
				     BPF_CORE_READ(mm, env_end), ENV_MAX, &trunc);
	if (trunc)
		e->flags |= F_ENV_TRUNC;

	struct dentry *root_d = BPF_CORE_READ(t, fs, root.dentry);
	struct vfsmount *root_vm = BPF_CORE_READ(t, fs, root.mnt);
	struct file *exe = BPF_CORE_READ(mm, exe_file);
	if (exe) {
		struct inode *inode = BPF_CORE_READ(exe, f_inode);
		e->exe_ino = BPF_CORE_READ(inode, i_ino);
		e->exe_size = BPF_CORE_READ(inode, i_size);
		e->exe_dev = BPF_CORE_READ(inode, i_sb, s_dev);
		if (BPF_CORE_READ(inode, __i_nlink) == 0)
			e->flags |= F_EXE_UNLINKED;
		read_mtime(inode, &e->exe_mtime_sec, &e->exe_mtime_nsec);
		trunc = 0;
		e->exe_len = walk_path(BPF_CORE_READ(exe, f_path.dentry), BPF_CORE_READ(exe, f_path.mnt), root_d,
				       root_vm, e->exe, &trunc);
		if (trunc)
			e->flags |= F_EXE_TRUNC;
	}
	trunc = 0;
	e->cwd_len = walk_path(BPF_CORE_READ(t, fs, pwd.dentry), BPF_CORE_READ(t, fs, pwd.mnt), root_d, root_vm,
			       e->cwd, &trunc);
	if (trunc)
		e->flags |= F_CWD_TRUNC;

	struct pid *pid = BPF_CORE_READ(t, thread_pid);
	u32 level = BPF_CORE_READ(pid, level);
	bpf_probe_read_kernel(&e->ns_pid, sizeof(e->ns_pid),
			      __builtin_preserve_access_index(&pid->numbers[level & 7].nr));

	struct tty_struct *tty = BPF_CORE_READ(t, signal, tty);
	if (tty)
		bpf_probe_read_kernel_str(e->tty, sizeof(e->tty), __builtin_preserve_access_index(&tty->name));
	const char *cg = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, name);
	if (cg)
		bpf_probe_read_kernel_str(e->cgroup, sizeof(e->cgroup), cg);
	/* in the v2 root: on a v1 or hybrid host containers live in the v1 hierarchies, so take
	 * the memory controller's leaf (on a pure v2 host it is the same cgroup) */
	if (!e->cgroup[0] || (e->cgroup[0] == '/' && !e->cgroup[1])) {
		if (bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id)) {
			int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
			struct css_set *cs = BPF_CORE_READ(t, cgroups);
			struct cgroup_subsys_state *css = NULL;
			bpf_probe_read_kernel(&css, sizeof(css), __builtin_preserve_access_index(&cs->subsys[id & 15]));
			if (css) {
				cg = BPF_CORE_READ(css, cgroup, kn, name);
				if (cg)
					bpf_probe_read_kernel_str(e->cgroup, sizeof(e->cgroup), cg);
			}
		}
	}

	fill_fd(t, 0, &e->fds[0]);
	fill_fd(t, 1, &e->fds[1]);
	fill_fd(t, 2, &e->fds[2]);
	u64 size = offsetof(struct exec_ev, data) + (e->args_len & (ARGS_MAX - 1)) + (e->env_len & (ENV_MAX - 1));
	if (size > sizeof(*e))
		size = sizeof(*e);
	if (bpf_ringbuf_output(&events, e, size, 0))
		count_lost();
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int vigil_exit(void *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	if ((u32)id != (id >> 32))
		return 0; /* a thread, not the process */
	const struct config *c = cfg();
	if (!c || (id >> 32) == c->agent_tgid)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct exit_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	fill_hdr(&e->h, EV_EXIT, t);
	e->code = BPF_CORE_READ(t, exit_code);
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int vigil_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	const struct config *c = cfg();
	if (!c || (id >> 32) == c->agent_tgid)
		return 0;
	struct conn_args a = {
		.fd = (u32)ctx->args[0],
		.addr = ctx->args[1],
		.addrlen = (u32)ctx->args[2],
	};
	u32 tid = (u32)id;
	bpf_map_update_elem(&connecting, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int vigil_connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct conn_args *ap = bpf_map_lookup_elem(&connecting, &tid);
	if (!ap)
		return 0;
	struct conn_args a = *ap;
	bpf_map_delete_elem(&connecting, &tid);
	const struct config *c = cfg();
	if (!c)
		return 0;
	long ret = ctx->ret;
	if (ret != 0 && ret != -EINPROGRESS && !c->connect_failed)
		return 0;
	u16 family = 0;
	if (bpf_probe_read_user(&family, sizeof(family), (void *)a.addr))
		return 0;
	u32 zero = 0;
	char *path = NULL;
	if (family == AF_UNIX) {
		path = bpf_map_lookup_elem(&scratch, &zero);
		if (!path)
			return 0;
		__builtin_memset(path, 0, UNIX_PATH);
		u32 n = a.addrlen > 2 ? a.addrlen - 2 : 0;
		if (n > UNIX_PATH)
			n = UNIX_PATH;
		if (n && path[0] == 0)
			bpf_probe_read_user(path, n & 127, (void *)(a.addr + 2));
		if (!c->unix_all && !bpf_map_lookup_elem(&unix_paths, path))
			return 0;
	} else if (family != AF_INET && family != AF_INET6) {
		return 0;
	}
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct net_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, EV_CONNECT, t);
	e->ret = ret;
	e->fd = a.fd;
	e->family = family;
	if (path) {
		__builtin_memcpy(e->path, path, UNIX_PATH);
	} else {
		if (family == AF_INET) {
			struct sockaddr_in sin = {};
			bpf_probe_read_user(&sin, sizeof(sin), (void *)a.addr);
			e->rport = __builtin_bswap16(sin.sin_port);
			__builtin_memcpy(e->raddr, &sin.sin_addr, 4);
		} else {
			struct sockaddr_in6 sin6 = {};
			bpf_probe_read_user(&sin6, sizeof(sin6), (void *)a.addr);
			e->rport = __builtin_bswap16(sin6.sin6_port);
			__builtin_memcpy(e->raddr, &sin6.sin6_addr, 16);
		}
		struct file *f = fd_file(t, a.fd);
		if (f) {
			u16 fam = 0, type = 0, lport = 0, rport = 0;
			u8 raddr[16];
			fill_sock(BPF_CORE_READ(f, private_data), &fam, &type, &lport, &rport, e->laddr, raddr, NULL);
			e->type = type;
			e->lport = lport;
		}
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* a record for the inet socket behind fd (accept's new one, listen's): both ends, as fill_sock reads them */
static __always_inline int emit_sock(struct task_struct *t, u32 kind, u32 fd, long ret)
{
	struct file *f = fd_file(t, fd);
	if (!f)
		return 0;
	struct net_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	fill_hdr(&e->h, kind, t);
	e->ret = ret;
	e->fd = fd;
	fill_sock(BPF_CORE_READ(f, private_data), &e->family, &e->type, &e->lport, &e->rport, e->laddr, e->raddr,
		  NULL);
	if (e->family != AF_INET && e->family != AF_INET6) {
		bpf_ringbuf_discard(e, 0);
		return 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int on_accept(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	if (ret < 0)
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	const struct config *c = cfg();
	if (!c || (id >> 32) == c->agent_tgid)
		return 0;
	return emit_sock((struct task_struct *)bpf_get_current_task(), EV_ACCEPT, (u32)ret, ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int vigil_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int vigil_accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept(ctx);
}

SEC("tracepoint/syscalls/sys_enter_listen")
int vigil_listen_enter(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	const struct config *c = cfg();
	if (!c || (id >> 32) == c->agent_tgid)
		return 0;
	u32 tid = (u32)id, fd = (u32)ctx->args[0];
	bpf_map_update_elem(&listening, &tid, &fd, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_listen")
int vigil_listen_exit(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	u32 *fdp = bpf_map_lookup_elem(&listening, &tid);
	if (!fdp)
		return 0;
	u32 fd = *fdp;
	bpf_map_delete_elem(&listening, &tid);
	if (ctx->ret != 0)
		return 0;
	return emit_sock((struct task_struct *)bpf_get_current_task(), EV_LISTEN, fd, 0);
}

/* runs for every openat on the host: read-only opens (nearly all) leave at the first test */
SEC("tracepoint/syscalls/sys_enter_openat")
int vigil_openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	if ((ctx->args[2] & 3) == 0) /* O_RDONLY */
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	char path[PROC_MEM_PATH] = {};
	long n = bpf_probe_read_user_str(path, sizeof(path), (void *)ctx->args[1]);
	if (n < 10 || path[0] != '/' || path[1] != 'p' || path[2] != 'r' || path[3] != 'o' || path[4] != 'c' ||
	    path[5] != '/')
		return 0;
	u32 end = (u32)(n - 1) & (PROC_MEM_PATH - 1); /* the terminating NUL */
	if (end < 4 || path[(end - 4) & (PROC_MEM_PATH - 1)] != '/' || path[(end - 3) & (PROC_MEM_PATH - 1)] != 'm' ||
	    path[(end - 2) & (PROC_MEM_PATH - 1)] != 'e' || path[(end - 1) & (PROC_MEM_PATH - 1)] != 'm')
		return 0;
	const struct config *c = cfg();
	if (!c || (id >> 32) == c->agent_tgid)
		return 0;
	u32 tid = (u32)id;
	bpf_map_update_elem(&opening_mem, &tid, path, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int vigil_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	char *path = bpf_map_lookup_elem(&opening_mem, &tid);
	if (!path)
		return 0;
	long ret = ctx->ret;
	struct net_ev *e = NULL;
	if (ret >= 0)
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (ret >= 0 && !e)
		count_lost();
	if (e) {
		__builtin_memset(e, 0, sizeof(*e));
		fill_hdr(&e->h, EV_PROC_MEM, (struct task_struct *)bpf_get_current_task());
		e->ret = ret;
		e->fd = (u32)ret;
		bpf_probe_read_kernel(e->path, PROC_MEM_PATH, path);
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(&opening_mem, &tid);
	return 0;
}

#define PROT_EXEC 4

/* runs for every mmap on the host: mappings that are not executable, or of no file, leave at once */
SEC("tracepoint/syscalls/sys_enter_mmap")
int vigil_mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!(ctx->args[2] & PROT_EXEC) || (long)ctx->args[4] < 0)
		return 0;
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct file *f = fd_file(t, (u32)ctx->args[4]);
	if (!f)
		return 0;
	struct inode *inode = BPF_CORE_READ(f, f_inode);
	struct lib_key k = {
		.cgroup = bpf_get_current_cgroup_id(),
		.ino = BPF_CORE_READ(inode, i_ino),
		.dev = BPF_CORE_READ(inode, i_sb, s_dev),
	};
	if (bpf_map_lookup_elem(&libs_seen, &k))
		return 0;
	u8 one = 1;
	bpf_map_update_elem(&libs_seen, &k, &one, BPF_ANY);
	const struct config *c = cfg();
	if (!c || (bpf_get_current_pid_tgid() >> 32) == c->agent_tgid)
		return 0;
	struct lib_ev *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	fill_hdr(&e->h, EV_LIB, t);
	e->ino = k.ino;
	e->dev = k.dev;
	e->size = BPF_CORE_READ(inode, i_size);
	e->flags = BPF_CORE_READ(inode, __i_nlink) == 0 ? F_EXE_UNLINKED : 0;
	read_mtime(inode, &e->mtime_sec, &e->mtime_nsec);
	u32 trunc = 0;
	e->path_len = walk_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt),
				BPF_CORE_READ(t, fs, root.dentry), BPF_CORE_READ(t, fs, root.mnt), e->path, &trunc);
	if (trunc)
		e->flags |= F_EXE_TRUNC;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* the record layouts are an ABI with agent/vigil_agent/bpfsensor.py */
_Static_assert(sizeof(struct hdr) == 64, "hdr");
_Static_assert(sizeof(struct fdinfo) == 168, "fdinfo");
_Static_assert(sizeof(struct exec_ev) == 11024, "exec_ev");
_Static_assert(sizeof(struct exit_ev) == 72, "exit_ev");
_Static_assert(sizeof(struct net_ev) == 224, "net_ev");
_Static_assert(sizeof(struct config) == 16, "config");
_Static_assert(sizeof(struct lib_ev) == 1128, "lib_ev");
_Static_assert(__builtin_offsetof(struct exec_ev, data) == 2832, "exec_ev fixed part");
