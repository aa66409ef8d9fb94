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
 *   - anything else (exec, exit, a process not registered, a DNS-port connect that Python
 *     attributes, unix sockets, /proc/<pid>/mem, library loads, an odd record) is queued, in
 *     order, in ctx->slow for Python, which handles the queue after the pass.
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
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* the record layouts of agent/bpf/vigil.bpf.c (pinned there with static asserts) */
enum { EV_EXEC = 1, EV_EXIT = 2, EV_CONNECT = 3, EV_ACCEPT = 4, EV_LISTEN = 5 };

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

_Static_assert(sizeof(struct hdr) == 64, "hdr layout");
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

struct vf_proc {
	uint32_t pid; /* 0: empty slot */
	uint32_t len; /* 0: the process is excluded: its records are dropped (and counted) */
	uint64_t start_ns; /* the process's start as records carry it: a reused pid does not match */
	char *block;
};

/* The part Python reads and writes (mirrored by fastpath.py's _Ctx). */
struct vf_ctx {
	int64_t wall_offset;  /* in: wall clock - CLOCK_BOOTTIME, ns */
	uint64_t seq;         /* in/out: the last seq given out */
	uint32_t self_pid;    /* in: never report the agent */
	uint32_t shed_net;    /* in: the limiter sheds net events: drop them, counting */
	uint32_t n_ports;     /* in: connects to these remote ports go to Python (DNS attribution) */
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
	uint32_t pad;
	uint64_t proc_bytes;
	/* private */
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
	if (!c->slots || !c->slow || !c->out) {
		free(c->slots);
		free(c->slow);
		free(c->out);
		free(c);
		return NULL;
	}
	c->mask = cap - 1;
	c->max_procs = max_procs;
	c->max_proc_bytes = max_proc_bytes;
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

/* Remove pid; linear probing with backward-shift deletion (no tombstones). */
void vf_forget(struct vf_ctx *c, uint32_t pid)
{
	uint32_t i = hash32(pid) & c->mask;
	while (c->slots[i].pid != pid) {
		if (!c->slots[i].pid)
			return;
		i = (i + 1) & c->mask;
	}
	free(c->slots[i].block);
	c->proc_bytes -= c->slots[i].len;
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

/* Register (or replace) the encoded process block for pid; len 0 marks it excluded.
 * Returns 0, or -ENOSPC when the table's bounds are reached (the pid then stays with Python). */
int vf_set(struct vf_ctx *c, uint32_t pid, uint64_t start_ns, const char *block, uint32_t len)
{
	char *copy = NULL;
	if (!pid)
		return -EINVAL;
	vf_forget(c, pid);
	if (c->n_procs >= c->max_procs || c->proc_bytes + len > c->max_proc_bytes)
		return -ENOSPC;
	if (len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, block, len);
	}
	uint32_t i = hash32(pid) & c->mask;
	while (c->slots[i].pid)
		i = (i + 1) & c->mask;
	c->slots[i] = (struct vf_proc){.pid = pid, .len = len, .start_ns = start_ns, .block = copy};
	c->n_procs++;
	c->proc_bytes += len;
	return 0;
}

void vf_clear(struct vf_ctx *c)
{
	for (uint32_t i = 0; i <= c->mask; i++) {
		free(c->slots[i].block);
		c->slots[i] = (struct vf_proc){0};
	}
	c->n_procs = 0;
	c->proc_bytes = 0;
}

void vf_free(struct vf_ctx *c)
{
	if (!c)
		return;
	vf_clear(c);
	free(c->slots);
	free(c->slow);
	free(c->out);
	free(c);
}

/* Python took the lines and the queue: start over, keeping the buffers. */
void vf_reset(struct vf_ctx *c)
{
	c->out_len = 0;
	c->lines = 0;
	c->slow_len = 0;
	c->n_slow = 0;
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

/* An address as Python's bpfsensor._ip prints it: inet_ntop, with an IPv4-mapped IPv6 address
 * shown as the IPv4 address. */
static char *put_ip(char *p, uint16_t family, const uint8_t *raw)
{
	char buf[INET6_ADDRSTRLEN];
	const char *s = inet_ntop(family == AF_INET ? AF_INET : AF_INET6, raw, buf, sizeof(buf));
	if (!s)
		return p;
	size_t n = strlen(s);
	if (family != AF_INET && n > 7 && !memcmp(s, "::ffff:", 7) && memchr(s + 7, '.', n - 7)) {
		s += 7;
		n -= 7;
	}
	return put(p, s, n);
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

static int net(struct vf_ctx *c, const struct net_ev *r, size_t size)
{
	uint32_t kind = r->h.kind;
	uint16_t fam = r->family;
	if (fam != AF_INET && fam != AF_INET6)
		return slow(c, r, size);
	if (kind == EV_CONNECT)
		for (uint32_t i = 0; i < c->n_ports; i++)
			if (r->rport == c->ports[i])
				return slow(c, r, size);
	if (r->h.pid == c->self_pid)
		return 0;
	struct vf_proc *proc = find(c, r->h.pid);
	if (!proc || proc->start_ns != r->h.start_ns)
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
	if (reserve(&c->out, c->out_len, &c->out_cap, proc->len + LINE_MAX_)) {
		c->dropped++;
		return VF_FULL;
	}
	char *p = c->out + c->out_len;
	p = kind == EV_CONNECT  ? PUT(p, "{\"kind\":\"net_connect\",\"process\":")
	    : kind == EV_ACCEPT ? PUT(p, "{\"kind\":\"net_accept\",\"process\":")
				: PUT(p, "{\"kind\":\"net_listen\",\"process\":");
	p = put(p, proc->block, proc->len);
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
	if (!(r->ret >= 0 || r->ret == -EINPROGRESS_))
		p = PUT(p, ",\"success\":false");
	p = PUT(p, ",\"time\":");
	p = put_i64(p, (int64_t)r->h.time_ns + c->wall_offset);
	p = PUT(p, ",\"seq\":");
	p = put_u64(p, ++c->seq);
	p = PUT(p, "}\n");
	c->out_len = (uint64_t)(p - c->out);
	c->lines++;
	c->fast++;
	return 0;
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
	case EV_EXIT:
	case EV_EXEC:
		vf_forget(c, h->pid); /* the block described the previous image, or a process now gone */
		return slow(c, data, size);
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
	return c->out_len > SOFT_MAX || c->slow_len > SOFT_MAX ? VF_FULL : 0;
}
