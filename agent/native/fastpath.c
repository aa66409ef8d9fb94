// SPDX-License-Identifier: MIT
/*
 * vigil-agent's native fast path: the eBPF ring's common records, handled without Python.
 *
 * Why: at ~1,400 records a second the agent spent 15-40 µs of Python per record (a ctypes
 * callback, a struct unpack, a wire struct, a JSON encode): most of its CPU. Most records are
 * connects, accepts and exits of processes the agent already knows, whose wire line is a fixed
 * shape around the process's encoded block. Here libbpf calls vf_sample() for each record, in C:
 *
 *   - connect / accept / listen (inet, inet6) of a process whose block Python registered
 *     (vf_set): the NDJSON line is written to ctx->out, byte for byte what msgspec writes for the
 *     same wire event (tests/agent/test_fastpath.py compares them), with the next seq;
 *   - an exec whose every part C can write exactly as Python would (its parent registered, its
 *     binary's hash, its user's name and its fds 0/1/2 already known, plain printable ASCII
 *     strings, no truncated environment) becomes its process_exec line, and the new process is
 *     registered: its block, the brief its children's lineage starts with, its lineage;
 *   - a connect to a DNS port (ctx->ports) of a registered process gets its line here too, and a
 *     copy of the record, marked EV_DNS_NOTED, is queued for Python: it only attributes the
 *     process's DNS queries (dnscap.DnsTracker.note_connect);
 *   - with ctx->fold (wire v2 repeats, docs/wire-format.md), a connect or accept equal to one
 *     written earlier in the open batch but for its time and ephemeral port writes no line: it is
 *     counted on that one (struct vf_fold), and Python's batcher puts the counts (vf_folds) on the
 *     batch's repeats line when it seals it;
 *   - anything else (another exec, exit, a process not registered, unix sockets,
 *     /proc/<pid>/mem, library loads, an odd record) is queued, in order, in ctx->slow for
 *     Python, which handles the queue after the pass.
 *
 * So one pass over the ring costs Python one call, whatever it holds. Within a pass, the lines
 * written here come before the events Python builds from the queue (each keeps its own time and
 * gets its seq in that order); a process's own records keep their order, because an exec or
 * exit forgets the pid's block here, before Python sees it: the process's next records queue
 * behind it, and no line is ever written with the block of a previous image. No allocation
 * happens per record: buffers grow by doubling up to a bound (then the pass stops, VF_FULL, and
 * Python empties them), blocks are bounded in count and bytes. No dependency but libc; loaded
 * with ctypes (agent/vigil_agent/fastpath.py).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "put.h"

/* the record layouts of agent/bpf/vigil.bpf.c (pinned there with static asserts) */
enum { EV_EXEC = 1, EV_EXIT = 2, EV_CONNECT = 3, EV_ACCEPT = 4, EV_LISTEN = 5 };
enum { EV_DNS_NOTED = 64 }; /* not the kernel's: a DNS connect whose line was written here */
enum { F_EXE_UNLINKED = 1, F_ENV_TRUNC = 4 };
#define FDINFO_SIZE 168
#define ARGS_MAX 4096
#define ENV_MAX 4096

struct hdr {
	uint32_t kind, pid, tid, ppid;
	uint64_t time_ns, start_ns;
	uint32_t uid, euid, gid, egid;
	char comm[16];
};

struct exit_ev {
	struct hdr h;
	int32_t code;
	uint32_t pad;
};

struct net_ev {
	struct hdr h;
	int32_t ret;
	uint16_t family, type, lport, rport;
	uint32_t fd;
	uint8_t laddr[16], raddr[16];
	char path[112];
};

struct exec_ev {
	struct hdr h;
	uint64_t exe_ino;
	int64_t exe_size;
	int64_t exe_mtime_sec;
	uint32_t exe_mtime_nsec, exe_dev, ns_pid, flags, args_len, env_len, exe_len, cwd_len;
	uint8_t fds[3][FDINFO_SIZE];
	char tty[32];
	char cgroup[128];
	char exe[1024];
	char cwd[1024];
	char data[ARGS_MAX + ENV_MAX];
};

_Static_assert(sizeof(struct hdr) == 64, "hdr layout");
_Static_assert(__builtin_offsetof(struct exec_ev, data) == 2832, "exec layout");
_Static_assert(sizeof(struct exit_ev) == 72, "exit layout");
_Static_assert(sizeof(struct net_ev) == 224, "net layout");

#define VF_FULL (-ENOBUFS)  /* the pass stopped after a record: a buffer is past SOFT_MAX */
#define MAX_PORTS 8
#define MAX_COMMS 32
#define REC_MAX (64 << 10) /* larger than any record the sensor writes */
#define SOFT_MAX (4 << 20) /* past this, the pass stops after the record (Python empties it) */
#define BUF_MAX (16 << 20) /* never reached: a pass stops at SOFT_MAX, and a record adds < 80 KiB */
#define LINE_MAX_ 512       /* a line's bytes besides its process block */
#define EINPROGRESS_ 115

#define LINEAGE_DEPTH 5
#define NO_START UINT64_MAX /* registered for its children's lineage only: no record matches */

struct vf_proc {
	uint32_t pid;   /* 0: empty slot */
	uint32_t len;   /* of block; 0: the process is excluded: its records are dropped (counted) */
	uint64_t start_ns; /* the process's start as records carry it: a reused pid does not match */
	char *block;    /* the process as events carry it (JSON) */
	char *brief;    /* what its children's lineage starts with; NULL: registered for lines only */
	char *lineage;  /* its ancestors' briefs, nearest first, NUL separated */
	uint32_t brief_len, lineage_len;
	uint32_t n_lineage;
	uint32_t item_end[LINEAGE_DEPTH]; /* where each ancestor's brief ends in lineage */
	char uuid[40];
	uint8_t py;     /* Python holds it too (registered it, or fetched it): its exit is queued */
	uint8_t dead;   /* exited: kept GRACE_NS for late records (audit's, Python's queue) */
	/* wire v2: its refs in the open batch's process table, valid while *_epoch == ctx->epoch */
	uint32_t def_epoch, def_ref;     /* the process itself (what its events name) */
	uint32_t brief_epoch, brief_ref; /* its brief, as its children's nearest ancestor */
	uint32_t lin_epoch;              /* its lineage's items (as ancestors), the first lin_n of them */
	uint32_t lin_n;
	uint32_t lin_ref[LINEAGE_DEPTH];
};

struct vf_hash { /* an executable's sha256 by (dev, inode, mtime, size), as Python's HashCache */
	uint64_t ino;
	int64_t mtime_ns, size;
	uint32_t dev, used;
	char hex[65];
};

struct vf_user {
	uint32_t uid, used;
	char name[33]; /* "" for a uid with no name */
};

struct vf_stdio { /* an fd's record (168 bytes) -> its Stdio JSON ("" for no such fd) */
	uint8_t raw[FDINFO_SIZE];
	uint32_t used, len;
	char json[400];
};

/* wire v2 repeats: a connect or accept written in the open batch (epoch), what makes another equal
 * to it, and what was folded into it. Valid while epoch == the batch's. */
struct vf_fold {
	uint64_t seq, n, last_ns; /* its line's seq; repeats folded into it; the last one's wall time */
	uint32_t epoch, ref;
	uint16_t kind, fam, port, udp; /* port: a connect's remote port, an accept's local port */
	uint8_t ok, pad_[7];
	uint8_t laddr[16], raddr[16];
};
#define FOLD_SLOTS 2048 /* a power of two, twice FOLDS_MAX: probes stay short */
#define FOLDS_MAX 1024  /* first events a batch folds into (Python reserves their repeats line) */
#define REPEATS_MAX 10000000ULL /* what one may stand for (vigil.bounds.REPEATS_MAX): then lines again */

struct vf_dead {
	uint32_t pid;
	uint64_t start_ns, exit_ns;
};

#define GRACE_NS 2000000000ULL /* late records of a gone process (audit's: milliseconds late) find it */
#define SCRATCH (128 << 10) /* more than an exec's block can take (argv, env < 4 KiB each) */
#define N_HASHES 4096
#define N_USERS 256
#define N_STDIO 1024
typedef unsigned char *(*sha1_fn)(const unsigned char *, size_t, unsigned char *);

/* The part Python reads and writes (mirrored by fastpath.py's _Ctx). */
struct vf_ctx {
	int64_t wall_offset;  /* in: wall clock - CLOCK_BOOTTIME, ns */
	uint64_t seq;         /* in/out: the last seq given out */
	uint32_t self_pid;    /* in: never report the agent */
	uint32_t shed_net;    /* in: the limiter sheds net events: drop them, counting */
	uint32_t n_ports;     /* in: connects to these remote ports are noted for Python (DNS attribution) */
	uint16_t ports[MAX_PORTS];
	uint32_t n_comms;     /* in: processes never reported, by comm */
	char comms[MAX_COMMS][16];
	char *out;            /* out: NDJSON lines, each ending in \n */
	uint64_t out_len;
	uint64_t lines;       /* lines in out */
	uint64_t shed;        /* counters, cumulative */
	uint64_t ignored;
	uint64_t fast;
	uint64_t dropped;     /* records that found no memory (realloc failed): reported as dropped */
	char *slow;           /* out: the records queued for Python: each a u32 length, the record,
	                       * padding to 8 bytes */
	uint64_t slow_len;
	uint64_t n_slow;
	uint32_t n_procs;     /* registered process blocks */
	uint32_t exec_on;     /* in: execs may be written here (Python's table enriches, no exe is
	                       * excluded), else every exec goes to Python */
	uint64_t proc_bytes;
	uint64_t execs;       /* process_exec lines written here */
	int64_t btime_ns;     /* in: boot time, wall clock ns (created_time) */
	uint64_t tick_ns;     /* in: ns per clock tick (/proc/<pid>/stat's unit) */
	char boot[40];        /* in: the boot id (process uuids) */
	uint64_t urgent;      /* out: exec lines written whose fd 0, 1 or 2 is an inet socket (a
	                       * reverse shell's shape), cumulative: their batch leaves at once */
	uint32_t v2;          /* in: wire v2: a process is defined once per batch (a "proc" line)
	                       * and its events name it by ref (docs/wire-format.md) */
	uint32_t epoch;       /* in: the open batch (refs defined in another are not used) */
	uint32_t next_ref;    /* in/out: the next ref to give out (shared with Python's batcher) */
	uint32_t omit_uid;    /* in: wire v2: a "proc" line leaves out a uuid the ingest derives from
	                       * the header's boot (wire.derived_uid), set when that boot is boot and btime_ns */
	uint64_t soft_max;    /* in: a pass stops once out is past this (0: SOFT_MAX): the batch's room */
	uint64_t expanded;    /* out: bytes of process blocks the refs written name, cumulative (the
	                       * ingest bounds a record's: wire.process_weight, EXPANDED_MAX) */
	uint64_t soft_expanded; /* in: a pass stops once expanded is past this (0: no bound) */
	uint32_t fold;        /* in: wire v2: fold repeated connects and accepts (struct vf_fold) */
	uint32_t n_folds;     /* out: first events in the fold table for the epoch folds_epoch */
	uint64_t folded;      /* out: connects and accepts folded, cumulative */
	/* private */
	struct vf_fold *folds;
	uint32_t folds_epoch;
	struct vf_hash *hashes;
	struct vf_user *users;
	struct vf_stdio *stdio;
	struct vf_dead *dead; /* exits, oldest first (a ring): their entries go GRACE_NS later */
	uint32_t dead_head, n_dead, max_dead;
	uint64_t now_ns;      /* the latest exit's time (CLOCK_BOOTTIME) */
	sha1_fn sha1;
	char (*scratch)[SCRATCH]; /* an exec's block, brief and lineage being built */
	uint64_t out_cap;
	uint64_t slow_cap;
	struct vf_proc *slots;
	uint32_t mask;
	uint32_t max_procs;
	uint64_t max_proc_bytes;
};

static uint32_t hash32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352dU;
	x ^= x >> 15;
	x *= 0x846ca68bU;
	x ^= x >> 16;
	return x;
}

/* The context and its buffers (not the blocks the slots hold: vf_clear). */
static void free_ctx(struct vf_ctx *c)
{
	free(c->slots);
	free(c->slow);
	free(c->out);
	free(c->hashes);
	free(c->users);
	free(c->stdio);
	free(c->dead);
	free(c->scratch);
	free(c->folds);
	free(c);
}

struct vf_ctx *vf_new(uint32_t max_procs, uint64_t max_proc_bytes)
{
	struct vf_ctx *c = calloc(1, sizeof(*c));
	uint32_t cap = 16;
	if (!c)
		return NULL;
	while (cap < max_procs * 2)
		cap <<= 1;
	c->slots = calloc(cap, sizeof(*c->slots));
	c->out_cap = c->slow_cap = 256 << 10;
	c->out = malloc(c->out_cap);
	c->slow = malloc(c->slow_cap);
	c->hashes = calloc(N_HASHES, sizeof(*c->hashes));
	c->users = calloc(N_USERS, sizeof(*c->users));
	c->stdio = calloc(N_STDIO, sizeof(*c->stdio));
	c->max_dead = 8192;
	c->dead = calloc(c->max_dead, sizeof(*c->dead));
	c->scratch = malloc(3 * sizeof(*c->scratch));
	c->folds = calloc(FOLD_SLOTS, sizeof(*c->folds));
	if (!c->slots || !c->slow || !c->out || !c->hashes || !c->users || !c->stdio || !c->dead ||
	    !c->scratch || !c->folds) {
		free_ctx(c);
		return NULL;
	}
	c->mask = cap - 1;
	c->max_procs = max_procs;
	c->max_proc_bytes = max_proc_bytes;
	/* SHA-1 for process uuids, from the OpenSSL that Python's hashlib already loaded; without
	 * it every exec goes to Python */
	const char *names[] = {"libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.so"};
	for (unsigned i = 0; i < sizeof(names) / sizeof(*names) && !c->sha1; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (h)
			*(void **)&c->sha1 = dlsym(h, "SHA1");
	}
	return c;
}

static struct vf_proc *find(struct vf_ctx *c, uint32_t pid)
{
	for (uint32_t i = hash32(pid) & c->mask;; i = (i + 1) & c->mask) {
		struct vf_proc *s = &c->slots[i];
		if (s->pid == pid)
			return s;
		if (!s->pid)
			return NULL;
	}
}

static void free_parts(struct vf_ctx *c, struct vf_proc *s)
{
	c->proc_bytes -= (uint64_t)s->len + s->brief_len + s->lineage_len;
	free(s->block);
	free(s->brief);
	free(s->lineage);
}

/* Remove pid; linear probing with backward-shift deletion (no tombstones). */
void vf_forget(struct vf_ctx *c, uint32_t pid)
{
	uint32_t i = hash32(pid) & c->mask;
	while (c->slots[i].pid != pid) {
		if (!c->slots[i].pid)
			return;
		i = (i + 1) & c->mask;
	}
	free_parts(c, &c->slots[i]);
	c->n_procs--;
	for (uint32_t j = (i + 1) & c->mask; c->slots[j].pid; j = (j + 1) & c->mask) {
		uint32_t home = hash32(c->slots[j].pid) & c->mask;
		/* move j back to the hole at i unless its home lies cyclically in (i, j] */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			c->slots[i] = c->slots[j];
			i = j;
		}
	}
	c->slots[i] = (struct vf_proc){0};
}

static char *dup(const char *src, uint32_t len)
{
	char *d = malloc(len ? len : 1);
	if (d && len)
		memcpy(d, src, len);
	return d;
}

/* Register (or replace) pid: its block (len 0: excluded), and when brief is given its brief,
 * uuid and lineage (the ancestors' briefs, n of them, separated by NUL bytes: JSON has none).
 * Returns 0, or -ENOSPC when the table's bounds are reached (the pid then stays with Python). */
int vf_set(struct vf_ctx *c, uint32_t pid, uint64_t start_ns, const char *block, uint32_t len,
	   const char *uuid, const char *brief, uint32_t brief_len, const char *lineage,
	   uint32_t lineage_len, uint32_t n, uint8_t py)
{
	if (!pid || n > LINEAGE_DEPTH)
		return -EINVAL;
	vf_forget(c, pid);
	uint64_t bytes = (uint64_t)len + brief_len + lineage_len;
	if (c->n_procs >= c->max_procs || c->proc_bytes + bytes > c->max_proc_bytes)
		return -ENOSPC;
	struct vf_proc e = {.pid = pid, .len = len, .start_ns = start_ns, .py = py};
	e.block = dup(block, len);
	if (brief) {
		e.brief = dup(brief, brief_len);
		e.brief_len = brief_len;
		e.lineage = dup(lineage, lineage_len);
		if (e.lineage) { /* where each item ends */
			uint32_t k = 0;
			for (uint32_t i = 0; i <= lineage_len && k < n; i++)
				if (i == lineage_len || !lineage[i])
					e.item_end[k++] = i;
			e.lineage_len = lineage_len;
			e.n_lineage = k;
		}
		snprintf(e.uuid, sizeof(e.uuid), "%s", uuid ? uuid : "");
	}
	if (!e.block || (brief && (!e.brief || !e.lineage))) {
		free(e.block);
		free(e.brief);
		free(e.lineage);
		return -ENOMEM;
	}
	uint32_t i = hash32(pid) & c->mask;
	while (c->slots[i].pid)
		i = (i + 1) & c->mask;
	c->slots[i] = e;
	c->n_procs++;
	c->proc_bytes += bytes;
	return 0;
}

/* The block of a process C registered, for Python's table (which then holds it too, and is
 * told of its exit: *dead when it has exited already). */
uint32_t vf_get(struct vf_ctx *c, uint32_t pid, const char **block, uint8_t *dead)
{
	struct vf_proc *s = find(c, pid);
	if (!s || !s->len)
		return 0;
	s->py = 1;
	*block = s->block;
	*dead = s->dead;
	return s->len;
}

int vf_set_hash(struct vf_ctx *c, uint32_t dev, uint64_t ino, int64_t mtime_ns, int64_t size, const char *hex)
{
	uint32_t h = hash32((uint32_t)(ino ^ (ino >> 32)) ^ dev ^ (uint32_t)mtime_ns);
	for (uint32_t k = 0; k < 16; k++) {
		struct vf_hash *e = &c->hashes[(h + k) % N_HASHES];
		if (!e->used || (e->ino == ino && e->dev == dev && e->mtime_ns == mtime_ns && e->size == size)) {
			*e = (struct vf_hash){.ino = ino, .mtime_ns = mtime_ns, .size = size, .dev = dev, .used = 1};
			snprintf(e->hex, sizeof(e->hex), "%s", hex);
			return 0;
		}
	}
	return -ENOSPC;
}

static const char *get_hash(struct vf_ctx *c, uint32_t dev, uint64_t ino, int64_t mtime_ns, int64_t size)
{
	uint32_t h = hash32((uint32_t)(ino ^ (ino >> 32)) ^ dev ^ (uint32_t)mtime_ns);
	for (uint32_t k = 0; k < 16; k++) {
		struct vf_hash *e = &c->hashes[(h + k) % N_HASHES];
		if (!e->used)
			return NULL;
		if (e->ino == ino && e->dev == dev && e->mtime_ns == mtime_ns && e->size == size)
			return e->hex;
	}
	return NULL;
}

int vf_set_user(struct vf_ctx *c, uint32_t uid, const char *name)
{
	if (strlen(name) >= sizeof(c->users[0].name))
		return -E2BIG; /* not kept: a cut name would be a wrong one (the execs stay Python's) */
	for (uint32_t k = 0; k < N_USERS; k++) {
		struct vf_user *e = &c->users[(uid + k) % N_USERS];
		if (!e->used || e->uid == uid) {
			e->uid = uid;
			e->used = 1;
			snprintf(e->name, sizeof(e->name), "%s", name);
			return 0;
		}
	}
	return -ENOSPC;
}

static const char *get_user(struct vf_ctx *c, uint32_t uid)
{
	for (uint32_t k = 0; k < N_USERS; k++) {
		struct vf_user *e = &c->users[(uid + k) % N_USERS];
		if (!e->used)
			return NULL;
		if (e->uid == uid)
			return e->name;
	}
	return NULL;
}

static uint32_t fnv(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261U;
	while (n--)
		h = (h ^ *p++) * 16777619U;
	return h;
}

int vf_set_stdio(struct vf_ctx *c, const uint8_t *raw, const char *json, uint32_t len)
{
	if (len >= sizeof(c->stdio[0].json))
		return -E2BIG;
	uint32_t h = fnv(raw, FDINFO_SIZE);
	for (uint32_t k = 0; k < 16; k++) {
		struct vf_stdio *e = &c->stdio[(h + k) % N_STDIO];
		if (!e->used || !memcmp(e->raw, raw, FDINFO_SIZE)) {
			memcpy(e->raw, raw, FDINFO_SIZE);
			memcpy(e->json, json, len);
			e->len = len;
			e->used = 1;
			return 0;
		}
	}
	return -ENOSPC;
}

static int inet_socket(const struct vf_stdio *e)
{ /* as vocab.is_network_socket: an AF_INET/AF_INET6 socket */
	return e->len && memmem(e->json, e->len, "\"type\":\"socket\"", 15) &&
	       memmem(e->json, e->len, "\"family\":\"inet", 14);
}

static const struct vf_stdio *get_stdio(struct vf_ctx *c, const uint8_t *raw)
{
	uint32_t h = fnv(raw, FDINFO_SIZE);
	for (uint32_t k = 0; k < 16; k++) {
		struct vf_stdio *e = &c->stdio[(h + k) % N_STDIO];
		if (!e->used)
			return NULL;
		if (!memcmp(e->raw, raw, FDINFO_SIZE))
			return e;
	}
	return NULL;
}

void vf_clear(struct vf_ctx *c)
{
	for (uint32_t i = 0; i <= c->mask; i++) {
		if (c->slots[i].pid)
			free_parts(c, &c->slots[i]);
		c->slots[i] = (struct vf_proc){0};
	}
	c->n_dead = 0;
	c->dead_head = 0;
	c->n_procs = 0;
	c->proc_bytes = 0;
}

void vf_free(struct vf_ctx *c)
{
	if (!c)
		return;
	vf_clear(c);
	free_ctx(c);
}

/* Python took the lines and the queue: start over, keeping the buffers. */
void vf_reset(struct vf_ctx *c)
{
	c->out_len = 0;
	c->lines = 0;
	c->slow_len = 0;
	c->n_slow = 0;
}

/* Processes that exited GRACE_NS ago go (or the oldest exit, to make room: force). */
static void expire(struct vf_ctx *c, int force)
{
	while (c->n_dead) {
		struct vf_dead *d = &c->dead[c->dead_head];
		if (!force && d->exit_ns + GRACE_NS > c->now_ns)
			break;
		struct vf_proc *s = find(c, d->pid);
		if (s && s->dead && s->start_ns == d->start_ns) /* not a new image of a reused pid */
			vf_forget(c, d->pid);
		c->dead_head = (c->dead_head + 1) % c->max_dead;
		c->n_dead--;
		force = 0;
	}
}

static int excluded_comm(const struct vf_ctx *c, const char *comm)
{
	for (uint32_t i = 0; i < c->n_comms; i++)
		if (!strncmp(c->comms[i], comm, 16))
			return 1;
	return 0;
}

/* Room for need more bytes in a buffer (*buf, *len, *cap), growing it up to BUF_MAX. */
static int reserve(char **buf, uint64_t len, uint64_t *cap, size_t need)
{
	if (len + need <= *cap)
		return 0;
	uint64_t n = *cap;
	while (n < len + need)
		n <<= 1;
	if (n > BUF_MAX)
		return -1;
	char *p = realloc(*buf, n);
	if (!p)
		return -1;
	*buf = p;
	*cap = n;
	return 0;
}

/* Queue a record for Python. */
static int slow(struct vf_ctx *c, const void *data, size_t size)
{
	if (size > REC_MAX)
		size = REC_MAX; /* never with the sensor's records; Python refuses the cut record */
	size_t step = (4 + size + 7) & ~(size_t)7;
	if (reserve(&c->slow, c->slow_len, &c->slow_cap, step)) {
		c->dropped++;
		return VF_FULL;
	}
	char *p = c->slow + c->slow_len;
	uint32_t len = (uint32_t)size;
	memcpy(p, &len, 4);
	memcpy(p + 4, data, size);
	c->slow_len += step;
	c->n_slow++;
	return 0;
}

/* A line's end, as msgspec orders an event's base fields (time, seq); p is where it stands. */
static void end_line(struct vf_ctx *c, char *p, uint64_t time_ns)
{
	p = PUT(p, ",\"time\":");
	p = put_i64(p, (int64_t)time_ns + c->wall_offset);
	p = PUT(p, ",\"seq\":");
	p = put_u64(p, ++c->seq);
	p = PUT(p, "}\n");
	c->out_len = (uint64_t)(p - c->out);
	c->lines++;
}

/* sha1(key) as the 8-4-4-4-12 hex of a process uuid (wire.process_uuid), NUL-terminated */
static void uuid_of(const struct vf_ctx *c, const char *key, size_t n, char *uuid)
{
	static const char hx[] = "0123456789abcdef";
	unsigned char d[20];
	c->sha1((const unsigned char *)key, n, d);
	for (int i = 0, k = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			uuid[k++] = '-';
		uuid[k++] = hx[d[i] >> 4];
		uuid[k++] = hx[d[i] & 15];
		uuid[k] = 0;
	}
}

/* wire v2: the span of block's ,"uid":"..." when the ingest derives that uuid from the header's
 * boot and the block's pid and created_time (wire.derived_uid): its length (0: the uid must be
 * sent) and its offset in *at. Whoever made the block, C or Python, the uuid is checked here. */
static size_t derived_span(const struct vf_ctx *c, const char *block, size_t len, size_t *at)
{
	static const char pid_key[] = "{\"pid\":", uid_key[] = ",\"uid\":\"", ct_key[] = ",\"created_time\":";
	const size_t pk = sizeof(pid_key) - 1, uk = sizeof(uid_key) - 1, ck = sizeof(ct_key) - 1;
	if (!c->omit_uid || !c->sha1 || c->btime_ns <= 0 || !c->boot[0] || len < pk + 1 + uk + 37 ||
	    memcmp(block, pid_key, pk))
		return 0;
	size_t i = pk;
	uint64_t pid = 0;
	while (i < len && i - pk < 10 && block[i] >= '0' && block[i] <= '9')
		pid = pid * 10 + (uint64_t)(block[i++] - '0');
	if (i == pk || len - i < uk + 37 || memcmp(block + i, uid_key, uk) || block[i + uk + 36] != '"')
		return 0;
	size_t u = i + uk, end = u + 37;
	/* the process's own created_time: a top-level field after the uid and before its lineage (a
	 * key with its quotes cannot occur inside a JSON string, where quotes are escaped) */
	const char *t = NULL;
	for (size_t j = end; j + ck <= len; j++)
		if (block[j] == ',' && !memcmp(block + j, ct_key, ck)) {
			t = block + j + ck;
			break;
		}
	if (!t)
		return 0;
	int64_t created = 0;
	int digits = 0;
	for (; t < block + len && *t >= '0' && *t <= '9' && digits < 19; t++, digits++)
		created = created * 10 + (*t - '0');
	if (!digits || created <= 0)
		return 0;
	char key[96], uuid[40];
	char *kp = put(key, c->boot, strnlen(c->boot, sizeof(c->boot) - 1));
	*kp++ = ':';
	kp = put_u64(kp, pid);
	*kp++ = ':';
	const int64_t tick = 10000000; /* wire.CLOCK_TICK_NS: USER_HZ 100 */
	if (created >= c->btime_ns && (created - c->btime_ns) % tick == 0) {
		kp = put_u64(kp, (uint64_t)((created - c->btime_ns) / tick));
	} else {
		*kp++ = 'a';
		kp = put_u64(kp, (uint64_t)created);
	}
	uuid_of(c, key, (size_t)(kp - key), uuid);
	if (memcmp(block + u, uuid, 36))
		return 0;
	*at = i;
	return end - i;
}

/* wire v2: a "proc" line defining a new ref as the JSON object block; returns where p stands and
 * the ref in *ref. lineage: n refs of ancestors (already defined), or none. */
static char *put_def(struct vf_ctx *c, char *p, const char *block, size_t len, const uint32_t *lineage,
		     uint32_t n, uint32_t *ref)
{
	*ref = c->next_ref;
	c->next_ref = (c->next_ref + 1) & 0x7fffffffU;
	p = PUT(p, "{\"kind\":\"proc\",\"ref\":");
	p = put_u64(p, *ref);
	p = PUT(p, ",\"process\":");
	size_t at = 0, skip = derived_span(c, block, len, &at);
	if (skip) {
		p = put(p, block, at);
		p = put(p, block + at + skip, len - at - skip);
	} else {
		p = put(p, block, len);
	}
	if (n) {
		p = PUT(p, ",\"lineage\":[");
		for (uint32_t i = 0; i < n; i++) {
			if (i)
				*p++ = ',';
			p = put_u64(p, lineage[i]);
		}
		*p++ = ']';
	}
	p = PUT(p, "}\n");
	return p;
}

/* wire v2: the first n items of s's lineage defined in the open batch (those not yet) */
static char *put_lineage_defs(struct vf_ctx *c, char *p, struct vf_proc *s, uint32_t n)
{
	if (s->lin_epoch != c->epoch) {
		s->lin_epoch = c->epoch;
		s->lin_n = 0;
	}
	for (uint32_t i = s->lin_n; i < n; i++) {
		uint32_t from = i ? s->item_end[i - 1] + 1 : 0;
		p = put_def(c, p, s->lineage + from, s->item_end[i] - from, NULL, 0, &s->lin_ref[i]);
	}
	if (n > s->lin_n)
		s->lin_n = n;
	return p;
}

/* Where s's block's own lineage begins (its last field: ,"lineage":[...]}), or 0 when it has
 * none or its lineage items are not known here (then it is defined with the lineage inline). */
static size_t lineage_at(const struct vf_proc *s)
{
	static const char key[] = ",\"lineage\":[";
	const size_t k = sizeof(key) - 1;
	if (!s->n_lineage || !s->lineage || s->len < k + 2 || s->block[s->len - 1] != '}' ||
	    s->block[s->len - 2] != ']')
		return 0;
	for (size_t i = s->len - 2 - k + 1; i-- > 0;) /* the last one: ancestors have no lineage */
		if (!memcmp(s->block + i, key, k))
			return i;
	return 0;
}

/* The fold table's slot for r's key in the open batch: the entry of an equal event (seq set), a
 * free slot with the key written in (seq 0: the caller writes the line and sets it), or NULL when
 * the batch's table is full. Slots of other epochs are free (linear probing, no deletion). */
static struct vf_fold *fold_slot(struct vf_ctx *c, uint32_t kind, uint32_t ref, const struct net_ev *r, int ok)
{
	const size_t alen = r->family == AF_INET6 ? 16 : 4;
	const uint16_t port = kind == EV_CONNECT ? r->rport : r->lport;
	const uint16_t udp = r->type == 2;
	uint32_t h = hash32(ref ^ (kind << 24) ^ ((uint32_t)port << 8) ^ r->family);
	for (size_t i = 0; i < alen; i++)
		h = hash32(h ^ r->raddr[i] ^ ((uint32_t)r->laddr[i] << 8));
	if (c->folds_epoch != c->epoch) {
		c->folds_epoch = c->epoch;
		c->n_folds = 0;
	}
	for (uint32_t k = 0, i = h & (FOLD_SLOTS - 1); k < FOLD_SLOTS; k++, i = (i + 1) & (FOLD_SLOTS - 1)) {
		struct vf_fold *f = &c->folds[i];
		if (f->epoch != c->epoch) { /* free: not an event of this batch */
			if (c->n_folds >= FOLDS_MAX)
				return NULL;
			c->n_folds++;
			memset(f, 0, sizeof(*f));
			f->epoch = c->epoch;
			f->ref = ref;
			f->kind = (uint16_t)kind;
			f->fam = r->family;
			f->port = port;
			f->udp = udp;
			f->ok = (uint8_t)ok;
			memcpy(f->laddr, r->laddr, alen);
			memcpy(f->raddr, r->raddr, alen);
			return f;
		}
		if (f->ref == ref && f->kind == kind && f->fam == r->family && f->port == port && f->udp == udp &&
		    f->ok == ok && !memcmp(f->laddr, r->laddr, alen) && !memcmp(f->raddr, r->raddr, alen))
			return f;
	}
	return NULL;
}

/* The open batch's folds (epoch): (seq, repeats, last wall time ns) of each first event that had
 * repeats, into out (3 * cap u64). Returns how many. */
uint32_t vf_folds(const struct vf_ctx *c, uint32_t epoch, uint64_t *out, uint32_t cap)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < FOLD_SLOTS && n < cap; i++) {
		const struct vf_fold *f = &c->folds[i];
		if (f->epoch == epoch && f->n && f->seq) {
			out[3 * n] = f->seq;
			out[3 * n + 1] = f->n;
			out[3 * n + 2] = f->last_ns;
			n++;
		}
	}
	return n;
}

static int net(struct vf_ctx *c, const struct net_ev *r, size_t size)
{
	uint32_t kind = r->h.kind;
	uint16_t fam = r->family;
	int dns = 0;
	if (fam != AF_INET && fam != AF_INET6)
		return slow(c, r, size);
	if (kind == EV_CONNECT)
		for (uint32_t i = 0; i < c->n_ports; i++)
			dns |= r->rport == c->ports[i];
	if (r->h.pid == c->self_pid)
		return 0;
	struct vf_proc *proc = find(c, r->h.pid);
	if (!proc || proc->start_ns != r->h.start_ns || proc->dead)
		return slow(c, r, size);
	if (c->n_comms && excluded_comm(c, r->h.comm)) {
		c->ignored++;
		return 0;
	}
	if (!proc->len) { /* an excluded executable */
		c->ignored++;
		return 0;
	}
	if (c->shed_net) {
		c->shed++;
		return 0;
	}
	if (reserve(&c->out, c->out_len, &c->out_cap,
		    2 * (size_t)proc->len + proc->lineage_len + LINE_MAX_ + 64 * (LINEAGE_DEPTH + 1))) {
		c->dropped++;
		return VF_FULL;
	}
	const int ok = r->ret >= 0 || r->ret == -EINPROGRESS_;
	struct vf_fold *f = NULL;
	if (c->v2 && c->fold && kind != EV_LISTEN && proc->def_epoch == c->epoch) {
		f = fold_slot(c, kind, proc->def_ref, r, ok);
		if (f && f->seq && f->n < REPEATS_MAX) { /* an equal one is in the batch: counted on it */
			f->n++;
			f->last_ns = (uint64_t)((int64_t)r->h.time_ns + c->wall_offset);
			c->folded++;
			c->fast++;
			if (dns) {
				struct net_ev note = *r;
				note.h.kind = EV_DNS_NOTED;
				return slow(c, &note, sizeof(note));
			}
			return 0;
		}
	}
	char *p = c->out + c->out_len;
	if (c->v2 && proc->def_epoch != c->epoch) { /* first named in this batch: defined here */
		size_t at = lineage_at(proc);
		if (at) { /* its block without the lineage, which goes by ref (its items defined once) */
			uint32_t n = proc->n_lineage;
			p = put_lineage_defs(c, p, proc, n);
			proc->block[at] = '}'; /* the bare block, in place for the copy */
			p = put_def(c, p, proc->block, at + 1, proc->lin_ref, n, &proc->def_ref);
			proc->block[at] = ',';
		} else {
			p = put_def(c, p, proc->block, proc->len, NULL, 0, &proc->def_ref);
		}
		proc->def_epoch = c->epoch;
	}
	p = kind == EV_CONNECT  ? PUT(p, "{\"kind\":\"net_connect\",\"process\":")
	    : kind == EV_ACCEPT ? PUT(p, "{\"kind\":\"net_accept\",\"process\":")
				: PUT(p, "{\"kind\":\"net_listen\",\"process\":");
	if (c->v2) {
		p = put_u64(p, proc->def_ref);
		c->expanded += proc->len; /* the block it stands for: more than the ingest counts */
	} else {
		p = put(p, proc->block, proc->len);
	}
	if (r->type == 2) /* SOCK_DGRAM; anything else is reported as tcp */
		p = PUT(p, ",\"protocol\":\"udp\"");
	if (fam == AF_INET6)
		p = PUT(p, ",\"family\":\"inet6\"");
	p = PUT(p, ",\"local_ip\":\"");
	p = put_ip(p, fam, r->laddr);
	*p++ = '"';
	if (r->lport) {
		p = PUT(p, ",\"local_port\":");
		p = put_u64(p, r->lport);
	}
	if (kind != EV_LISTEN) { /* a listener has no peer */
		p = PUT(p, ",\"remote_ip\":\"");
		p = put_ip(p, fam, r->raddr);
		*p++ = '"';
	}
	if (r->rport) {
		p = PUT(p, ",\"remote_port\":");
		p = put_u64(p, r->rport);
	}
	if (!ok)
		p = PUT(p, ",\"success\":false");
	end_line(c, p, r->h.time_ns);
	c->fast++;
	if (c->v2 && c->fold && kind != EV_LISTEN) {
		if (!f) /* its process was defined by this line: its ref is the batch's now */
			f = fold_slot(c, kind, proc->def_ref, r, ok);
		if (f && !f->seq)
			f->seq = c->seq;
	}
	if (dns) { /* Python attributes the process's queries: it gets the record, marked */
		struct net_ev note = *r;
		note.h.kind = EV_DNS_NOTED;
		return slow(c, &note, sizeof(note));
	}
	return 0;
}

/* A JSON string body as msgspec writes it, for printable ASCII only (" and \\ escaped); NULL
 * for anything else (control bytes, non-ASCII, invalid UTF-8): Python writes those. */
static char *put_jstr(char *p, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch > 0x7e)
			return NULL;
		if (ch == '"' || ch == '\\')
			*p++ = '\\';
		*p++ = (char)ch;
	}
	return p;
}

static size_t cstrlen(const char *s, size_t max)
{
	const char *z = memchr(s, 0, max);
	return z ? (size_t)(z - s) : max;
}

/* A path as the kernel walk records it (components leaf first, NUL terminated each) into
 * out, as bpfsensor._path makes it; returns its length, or -1 if it does not fit. */
static long walk_path(char *out, size_t cap, const char *raw, size_t n)
{
	size_t end = n, len = 0;
	if (end && !raw[end - 1])
		end--; /* the last component's terminator */
	/* components are raw[..] split at NULs; write them last to first */
	size_t stop = end;
	for (long i = (long)end - 1;; i--) {
		if (i < 0 || !raw[i]) {
			size_t start = (size_t)(i + 1), clen = stop - start;
			if (len + 1 + clen > cap)
				return -1;
			out[len++] = '/';
			memcpy(out + len, raw + start, clen);
			len += clen;
			stop = (size_t)i;
			if (i < 0)
				break;
		}
	}
	return (long)len;
}


/* The process_exec line of r, written exactly as the Python path would, and the new process
 * registered; 1 when done, 0 when Python must do it (nothing was changed then). */
static int exec_line(struct vf_ctx *c, const struct exec_ev *r, size_t size)
{
	const size_t fixed = __builtin_offsetof(struct exec_ev, data);
	if (!c->exec_on || !c->sha1 || size < fixed)
		return 0;
	uint32_t al = r->args_len, el = r->env_len, pid = r->h.pid;
	if (size != fixed + al + el || al >= ARGS_MAX || el >= ENV_MAX || r->flags & F_ENV_TRUNC)
		return 0;
	char exe[1100], cwd[1100];
	long exe_n = 0, cwd_n = 0;
	if (r->exe_len) {
		exe_n = walk_path(exe, sizeof(exe) - 16, r->exe, r->exe_len < 1024 ? r->exe_len : 1024);
		if (exe_n < 0)
			return 0;
		if (r->flags & F_EXE_UNLINKED) {
			memcpy(exe + exe_n, " (deleted)", 10);
			exe_n += 10;
		}
	}
	if (exe_n >= 7 && !memcmp(exe, "/memfd:", 7))
		return 0; /* also a memfd_exec event: Python's */
	if (r->cwd_len) {
		cwd_n = walk_path(cwd, sizeof(cwd), r->cwd, r->cwd_len < 1024 ? r->cwd_len : 1024);
		if (cwd_n < 0)
			return 0;
	}
	/* the caches Python fills: the binary's hash, the user's name, fds 0/1/2, the parent */
	int64_t mtime_ns = r->exe_mtime_sec * 1000000000LL + r->exe_mtime_nsec;
	const char *sha = get_hash(c, r->exe_dev, r->exe_ino, mtime_ns, r->exe_size);
	const char *user = get_user(c, r->h.uid);
	const struct vf_stdio *fd[3];
	for (int i = 0; i < 3; i++)
		if (!(fd[i] = get_stdio(c, r->fds[i])))
			return 0;
	struct vf_proc *parent = NULL;
	if (r->h.ppid) {
		parent = find(c, r->h.ppid);
		if (!parent || !parent->brief)
			return 0;
	}
	if (!sha || !user)
		return 0;
	size_t comm_n = cstrlen(r->h.comm, 16), tty_n = cstrlen(r->tty, 32);
	if (tty_n == 6 && !memcmp(r->tty, "(none)", 6))
		tty_n = 0;
	/* the container: the first run of 64 lowercase hex digits in the cgroup's name */
	const char *cid = NULL;
	for (size_t i = 0, run = 0, n = cstrlen(r->cgroup, 128); i < n && !cid; i++) {
		char ch = r->cgroup[i];
		run = ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) ? run + 1 : 0;
		if (run == 64)
			cid = r->cgroup + i - 63;
	}
	/* LD_PRELOAD / LD_LIBRARY_PATH: the last of each in the environment */
	const char *pre = NULL, *lib = NULL;
	size_t pre_n = 0, lib_n = 0;
	for (const char *e = r->data + al, *end = r->data + al + el; e < end;) {
		const char *z = memchr(e, 0, (size_t)(end - e));
		size_t n = z ? (size_t)(z - e) : (size_t)(end - e);
		if (n >= 11 && !memcmp(e, "LD_PRELOAD=", 11)) {
			pre = e + 11;
			pre_n = n - 11;
		} else if (n >= 16 && !memcmp(e, "LD_LIBRARY_PATH=", 16)) {
			lib = e + 16;
			lib_n = n - 16;
		}
		e += n + 1;
	}
	/* uuid: sha1("<boot>:<pid>:<start ticks>") as 8-4-4-4-12 hex, as proctable.stable_uuid */
	uint64_t ticks = r->h.start_ns / c->tick_ns;
	char key[96], uuid[40];
	char *kp = put(key, c->boot, strnlen(c->boot, sizeof(c->boot) - 1)); /* (not snprintf: 200 a second) */
	*kp++ = ':';
	kp = put_u64(kp, pid);
	*kp++ = ':';
	kp = put_u64(kp, ticks);
	uuid_of(c, key, (size_t)(kp - key), uuid);
	int64_t created = c->btime_ns + (int64_t)(ticks * 1000000000ULL / (1000000000ULL / c->tick_ns));

	char *b = c->scratch[0], *q = c->scratch[1], *p;
	/* the parts block and brief share, in Process's field order */
	p = PUT(b, "{\"pid\":");
	p = put_u64(p, pid);
	p = PUT(p, ",\"uid\":\"");
	p = put(p, uuid, 36);
	*p++ = '"';
	if (comm_n) {
		p = PUT(p, ",\"name\":\"");
		if (!(p = put_jstr(p, r->h.comm, comm_n)))
			return 0;
		*p++ = '"';
	}
	char *cmd_at = p; /* cmd_line, args */
	const char *cl = NULL; /* the cmd_line string's body in the block */
	size_t n_args = 0, cl_n = 0;
	if (al) { /* args: split at NULs, the trailing empty one dropped */
		size_t end = !r->data[al - 1] ? al - 1 : al;
		char *cmd = c->scratch[2] + SCRATCH / 2, *cm = cmd; /* cmd_line's body */
		char *args = c->scratch[2], *a = PUT(args, ",\"args\":[");
		for (size_t i = 0, start = 0; i <= end; i++) {
			if (i == end || !r->data[i]) {
				if (n_args) {
					*cm++ = ' ';
					*a++ = ',';
				}
				*a++ = '"';
				if (!(cm = put_jstr(cm, r->data + start, i - start)) ||
				    !(a = put_jstr(a, r->data + start, i - start)))
					return 0;
				*a++ = '"';
				n_args++;
				start = i + 1;
			}
		}
		*a++ = ']';
		if (cm > cmd) {
			p = PUT(p, ",\"cmd_line\":\"");
			cl = p;
			p = put(p, cmd, (size_t)(cm - cmd));
			cl_n = (size_t)(cm - cmd);
			*p++ = '"';
		}
		p = put(p, args, (size_t)(a - args));
	}
	/* the brief takes everything so far but args, with cmd_line cut at 256 characters */
	char *f = p; /* file, user, euid: the brief takes them too */
	if (exe_n || sha[0] || mtime_ns) {
		p = PUT(p, ",\"file\":{");
		int first = 1;
		if (exe_n) {
			const char *base = memrchr(exe, '/', (size_t)exe_n);
			base = base ? base + 1 : exe;
			p = PUT(p, "\"path\":\"");
			if (!(p = put_jstr(p, exe, (size_t)exe_n)))
				return 0;
			if (base < exe + exe_n) {
				p = PUT(p, "\",\"name\":\"");
				if (!(p = put_jstr(p, base, (size_t)(exe + exe_n - base))))
					return 0;
			}
			*p++ = '"';
			first = 0;
		}
		if (sha[0]) {
			p = first ? PUT(p, "\"sha256\":\"") : PUT(p, ",\"sha256\":\"");
			p = put(p, sha, strlen(sha));
			*p++ = '"';
			first = 0;
		}
		if (mtime_ns) {
			p = first ? PUT(p, "\"modified_time\":") : PUT(p, ",\"modified_time\":");
			p = put_i64(p, mtime_ns);
		}
		*p++ = '}';
	}
	p = PUT(p, ",\"user\":{\"uid\":");
	p = put_u64(p, r->h.uid);
	if (user[0]) {
		p = PUT(p, ",\"name\":\"");
		if (!(p = put_jstr(p, user, strlen(user))))
			return 0;
		*p++ = '"';
	}
	p = PUT(p, "},\"euid\":");
	p = put_u64(p, r->h.euid);
	char *f_end = p;
	p = PUT(p, ",\"gid\":");
	p = put_u64(p, r->h.gid);
	p = PUT(p, ",\"egid\":");
	p = put_u64(p, r->h.egid);
	if (cwd_n) {
		p = PUT(p, ",\"working_directory\":\"");
		if (!(p = put_jstr(p, cwd, (size_t)cwd_n)))
			return 0;
		*p++ = '"';
	}
	char *ct = p; /* created_time, container_uid: the brief's too */
	if (created) {
		p = PUT(p, ",\"created_time\":");
		p = put_i64(p, created);
	}
	char *ct_end = p;
	if (cid && r->ns_pid && r->ns_pid != pid) {
		p = PUT(p, ",\"namespace_pid\":");
		p = put_u64(p, r->ns_pid);
	}
	char *cu = p;
	if (cid) {
		p = PUT(p, ",\"container_uid\":\"");
		p = put(p, cid, 64);
		*p++ = '"';
	}
	char *cu_end = p;
	if (pre_n) {
		p = PUT(p, ",\"ld_preload\":\"");
		if (!(p = put_jstr(p, pre, pre_n)))
			return 0;
		*p++ = '"';
	}
	if (lib_n) {
		p = PUT(p, ",\"ld_library_path\":\"");
		if (!(p = put_jstr(p, lib, lib_n)))
			return 0;
		*p++ = '"';
	}
	if (tty_n) {
		p = PUT(p, ",\"tty\":\"");
		if (!(p = put_jstr(p, r->tty, tty_n)))
			return 0;
		*p++ = '"';
	}
	static const char *const names[] = {",\"stdin\":", ",\"stdout\":", ",\"stderr\":"};
	for (int i = 0; i < 3; i++)
		if (fd[i]->len) {
			p = put(p, names[i], strlen(names[i]));
			p = put(p, fd[i]->json, fd[i]->len);
		}
	char *tail = p; /* exe_deleted, ppid, parent_uid: the brief's too */
	if (r->flags & F_EXE_UNLINKED && exe_n)
		p = PUT(p, ",\"exe_deleted\":true");
	if (r->h.ppid) {
		p = PUT(p, ",\"ppid\":");
		p = put_u64(p, r->h.ppid);
	}
	if (parent && parent->uuid[0]) {
		p = PUT(p, ",\"parent_uid\":\"");
		p = put(p, parent->uuid, strlen(parent->uuid));
		*p++ = '"';
	}
	char *tail_end = p;
	/* lineage: the parent's brief, then its own lineage's first LINEAGE_DEPTH - 1 */
	char *lin = c->scratch[2];
	size_t lin_n = 0;
	uint32_t n_lin = 0;
	if (parent) {
		memcpy(lin, parent->brief, parent->brief_len);
		lin_n = parent->brief_len;
		uint32_t keep = parent->n_lineage < LINEAGE_DEPTH - 1 ? parent->n_lineage : LINEAGE_DEPTH - 1;
		if (keep) {
			uint32_t upto = parent->item_end[keep - 1];
			lin[lin_n++] = 0;
			memcpy(lin + lin_n, parent->lineage, upto);
			lin_n += upto;
		}
		p = PUT(p, ",\"lineage\":[");
		for (size_t i = 0; i < lin_n; i++)
			*p++ = lin[i] ? lin[i] : ',';
		*p++ = ']';
		n_lin = 1 + keep;
	}
	*p++ = '}';
	size_t block_n = (size_t)(p - b);

	/* the brief: pid, uid, name, cmd_line[:256], file, user, euid, created_time, container_uid,
	 * exe_deleted, ppid, parent_uid */
	char *w = put(q, b, (size_t)(cmd_at - b));
	if (cl) { /* cmd_line cut at 256 characters (an escape is one) */
		const char *t = cl, *end = cl + cl_n;
		for (int chars = 0; t < end && chars < 256; chars++)
			t += *t == '\\' ? 2 : 1;
		w = PUT(w, ",\"cmd_line\":\"");
		w = put(w, cl, (size_t)(t - cl));
		*w++ = '"';
	}
	w = put(w, f, (size_t)(f_end - f));
	w = put(w, ct, (size_t)(ct_end - ct));
	w = put(w, cu, (size_t)(cu_end - cu));
	w = put(w, tail, (size_t)(tail_end - tail));
	*w++ = '}';
	size_t brief_n = (size_t)(w - q);

	/* the line, then the process registered (replacing the previous image) */
	size_t need = block_n + 128;
	if (c->v2) /* its ancestors' and its own definitions */
		need += block_n + (parent ? parent->brief_len + parent->lineage_len : 0) + 64 * (LINEAGE_DEPTH + 1);
	if (reserve(&c->out, c->out_len, &c->out_cap, need)) {
		c->dropped++;
		return 1;
	}
	char *o = c->out + c->out_len;
	uint32_t refs[LINEAGE_DEPTH], self_ref = 0;
	if (c->v2) {
		if (parent) { /* the ancestors, each defined once per batch: the parent's brief, then its lineage */
			if (parent->brief_epoch != c->epoch) {
				o = put_def(c, o, parent->brief, parent->brief_len, NULL, 0, &parent->brief_ref);
				parent->brief_epoch = c->epoch;
			}
			uint32_t keep = n_lin - 1;
			if (keep)
				o = put_lineage_defs(c, o, parent, keep);
			refs[0] = parent->brief_ref;
			for (uint32_t i = 0; i < keep; i++)
				refs[1 + i] = parent->lin_ref[i];
		}
		/* itself: its block without the lineage (which ends it), and the lineage by ref */
		char *bare = c->scratch[2] + lin_n + 1; /* after the lineage built there */
		size_t bare_n = (size_t)(tail_end - b);
		memcpy(bare, b, bare_n);
		bare[bare_n++] = '}';
		o = put_def(c, o, bare, bare_n, refs, n_lin, &self_ref);
	}
	o = PUT(o, "{\"kind\":\"process_exec\",\"process\":");
	if (c->v2) {
		o = put_u64(o, self_ref);
		c->expanded += block_n;
	} else {
		o = put(o, b, block_n);
	}
	end_line(c, o, r->h.time_ns);
	c->execs++;
	for (int i = 0; i < 3; i++)
		if (inet_socket(fd[i])) {
			c->urgent++;
			break;
		}
	vf_set(c, pid, r->h.start_ns, b, (uint32_t)block_n, uuid, q, (uint32_t)brief_n, lin, (uint32_t)lin_n, n_lin, 0);
	if (c->v2) { /* its next events in this batch name it; its children's lineage is defined */
		struct vf_proc *s = find(c, pid);
		if (s) {
			s->def_epoch = c->epoch;
			s->def_ref = self_ref;
			if (n_lin) {
				s->lin_epoch = c->epoch;
				s->lin_n = n_lin;
				memcpy(s->lin_ref, refs, n_lin * sizeof(refs[0]));
			}
		}
	}
	return 1;
}

static int handle(struct vf_ctx *c, const void *data, size_t size)
{
	const struct hdr *h = data;
	if (size < sizeof(*h))
		return slow(c, data, size);
	switch (h->kind) {
	case EV_CONNECT:
	case EV_ACCEPT:
	case EV_LISTEN:
		if (size != sizeof(struct net_ev))
			return slow(c, data, size);
		return net(c, data, size);
	case EV_EXEC:
		if (h->pid == c->self_pid)
			return 0;
		if (c->n_comms && excluded_comm(c, h->comm)) {
			c->ignored++;
			return 0;
		}
		if (exec_line(c, data, size))
			return 0;
		vf_forget(c, h->pid); /* the block described the previous image */
		return slow(c, data, size);
	case EV_EXIT: {
		struct vf_proc *s = find(c, h->pid);
		if (!s) /* not C's: Python may hold it */
			return slow(c, data, size);
		int py = s->py;
		if (h->time_ns > c->now_ns)
			c->now_ns = h->time_ns;
		expire(c, c->n_dead == c->max_dead);
		s = find(c, h->pid); /* expiring may have moved it */
		if (s && !s->dead) {
			s->dead = 1;
			/* only its block is asked for now (late records); its children are exec'd */
			c->proc_bytes -= (uint64_t)s->brief_len + s->lineage_len;
			free(s->brief);
			free(s->lineage);
			s->brief = s->lineage = NULL;
			s->brief_len = s->lineage_len = s->n_lineage = 0;
			c->dead[(c->dead_head + c->n_dead++) % c->max_dead] =
				(struct vf_dead){.pid = h->pid, .start_ns = s->start_ns, .exit_ns = h->time_ns};
		}
		return py ? slow(c, data, size) : 0;
	}
	default:
		return slow(c, data, size);
	}
}

/* libbpf's ring_buffer_sample_fn. libbpf has consumed the record whatever this returns, so it is
 * always handled first; VF_FULL then stops the pass for Python to empty the buffers. */
int vf_sample(void *ctx, void *data, size_t size)
{
	struct vf_ctx *c = ctx;
	int rc = handle(c, data, size);
	if (rc)
		return rc;
	uint64_t soft = c->soft_max ? c->soft_max : SOFT_MAX;
	if (c->soft_expanded && c->expanded > c->soft_expanded)
		return VF_FULL;
	return c->out_len > soft || c->slow_len > SOFT_MAX ? VF_FULL : 0;
}
