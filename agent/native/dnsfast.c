// SPDX-License-Identifier: MIT
/*
 * vigil-agent's native DNS reader: the capture socket's packets read and parsed in C.
 *
 * Why: at 100 queries a second, reading and parsing the two packets of each query in Python
 * (a recv, the IP/UDP header, the DNS message) was about a third of the agent's CPU on the
 * bench. Here one call reads a burst of packets from the AF_PACKET socket (agent/vigil_agent/
 * dnscap.py opens it, with its port-53 filter) and writes, per packet, one item of a JSON array
 * that Python decodes in one msgspec call:
 *
 *   [time, qr, src, sport, dst, dport, id, hostname, qtype, rcode, [answers], ""]
 *       a UDP DNS message read exactly as dnscap.quick_parse reads it (one question, plain
 *       names, A/AAAA/CNAME/NS/PTR answers): the same fields, the same strings;
 *   [time, -1, "", 0, "", 0, 0, "", "", "", [], "<the packet, base64>"]
 *       anything else (TCP, which Python reassembles; a message quick_parse would leave to
 *       dnslib): the packet as read, for Python's own path (dnscap.DnsTracker.on_packet).
 *
 * Packets dnscap.parse_packet rejects (not IPv4/IPv6 UDP/TCP, truncated headers) are skipped, as
 * Python skips them. Pairing queries with answers and with processes stays in Python
 * (dnscap.DnsTracker), for every path alike. tests/agent/test_agent_dnsfast.py holds this file
 * to Python's parser, message for message. No dependency but libc; loaded with ctypes
 * (agent/vigil_agent/fastpath.py, DnsReader).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "put.h"

#define PKT_MAX 65536
#define OUT_SOFT (4 << 20)  /* past this, a read stops (Python takes the items, then reads on) */
#define ITEM_MAX (PKT_MAX / 3 * 4 + 256) /* a raw item: the packet in base64, and the frame */
#define NAME_MAX_ (1024)    /* longer names (pointer chains) go to Python */
#define MAX_ANSWERS 32      /* as dnscap.quick_parse */
#define ANSWER_MAX (NAME_MAX_ + 64)

struct vd_ctx {
	char *out;        /* the items, comma separated (Python adds the brackets) */
	uint64_t out_len;
	uint64_t items;
	uint64_t parsed;  /* cumulative: messages read here */
	uint64_t raw;     /* cumulative: packets left to Python */
	uint64_t errors;  /* cumulative: reads that failed (ENOBUFS: the socket overflowed) */
	/* private (the part above is mirrored by fastpath.py's _DnsCtx) */
	uint64_t out_cap;
	uint8_t *pkt;
	char *answers;    /* scratch: one message's answers, as JSON */
};

void vd_free(struct vd_ctx *c)
{
	if (!c)
		return;
	free(c->out);
	free(c->pkt);
	free(c->answers);
	free(c);
}

struct vd_ctx *vd_new(void)
{
	struct vd_ctx *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->out_cap = 256 << 10;
	c->out = malloc(c->out_cap);
	c->pkt = malloc(PKT_MAX);
	c->answers = malloc(MAX_ANSWERS * ANSWER_MAX + 2);
	if (!c->out || !c->pkt || !c->answers) {
		vd_free(c);
		return NULL;
	}
	return c;
}

/* Python took the items. */
void vd_reset(struct vd_ctx *c)
{
	c->out_len = 0;
	c->items = 0;
}

/* A string that needs no escaping (names of letters, digits, - _ * .; addresses; type names). */
static char *put_str(char *p, const char *s, size_t n)
{
	*p++ = '"';
	p = put(p, s, n);
	*p++ = '"';
	return p;
}

/* An address as dnscap._ip prints it, quoted. */
static char *put_qip(char *p, const uint8_t *raw, int v6)
{
	*p++ = '"';
	p = put_ip(p, v6 ? AF_INET6 : AF_INET, raw);
	*p++ = '"';
	return p;
}

static const char *qtype_name(unsigned t)
{
	switch (t) {
	case 1: return "A";
	case 2: return "NS";
	case 5: return "CNAME";
	case 6: return "SOA";
	case 12: return "PTR";
	case 15: return "MX";
	case 16: return "TXT";
	case 28: return "AAAA";
	case 33: return "SRV";
	case 65: return "HTTPS";
	case 255: return "ANY";
	default: return NULL;
	}
}

static const char *rcode_name(unsigned r)
{
	static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};
	return r < sizeof(names) / sizeof(*names) ? names[r] : NULL;
}

static int ldh(uint8_t ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
	       ch == '_' || ch == '*';
}

/* A (possibly compressed) name at off, as dnscap._name reads it: "a.b.c." (a trailing dot; "."
 * for the root) into out, and the offset after it; -1 where Python returns None, or for a name
 * longer than NAME_MAX_ (Python then reads the message itself). */
static long get_name(const uint8_t *m, size_t n, size_t off, char *out, size_t *olen)
{
	long end = -1;
	int jumps = 0;
	size_t o = 0;
	for (;;) {
		if (off >= n)
			return -1;
		uint8_t ln = m[off];
		if (ln == 0) {
			off++;
			break;
		}
		if ((ln & 0xC0) == 0xC0) {
			if (off + 1 >= n || jumps > 16)
				return -1;
			if (end < 0)
				end = (long)off + 2;
			off = (size_t)(ln & 0x3F) << 8 | m[off + 1];
			jumps++;
			continue;
		}
		if ((ln & 0xC0) || off + 1 + ln > n || o + ln + 1 > NAME_MAX_)
			return -1;
		for (size_t i = 1; i <= ln; i++)
			if (!ldh(m[off + i]))
				return -1;
		memcpy(out + o, m + off + 1, ln);
		o += ln;
		out[o++] = '.';
		off += 1 + (size_t)ln;
	}
	if (!o)
		out[o++] = '.';
	*olen = o;
	return end >= 0 ? end : (long)off;
}

struct msg {
	unsigned id, qr;
	const char *qtype, *rcode;
	char host[NAME_MAX_];
	size_t host_len;
	size_t answers_len; /* of the JSON in ctx->answers, brackets included */
};

/* dnscap.quick_parse in C: 0, or -1 where it returns None (dnslib's turn, in Python). */
static int quick_parse(const uint8_t *m, size_t n, struct msg *r, char *ans)
{
	char name[NAME_MAX_];
	size_t nl;
	if (n < 12)
		return -1;
	unsigned flags = (unsigned)m[2] << 8 | m[3];
	unsigned qd = (unsigned)m[4] << 8 | m[5], an = (unsigned)m[6] << 8 | m[7];
	r->id = (unsigned)m[0] << 8 | m[1];
	if (qd != 1)
		return -1;
	long off = get_name(m, n, 12, r->host, &r->host_len);
	if (off < 0 || (size_t)off + 4 > n)
		return -1;
	r->qtype = qtype_name((unsigned)m[off] << 8 | m[off + 1]);
	if (!r->qtype)
		return -1;
	off += 4;
	r->qr = flags >> 15;
	r->rcode = rcode_name(flags & 0xF);
	if (!r->rcode)
		return -1;
	r->host_len--; /* qname.rstrip("."): the one trailing dot ("." -> "") */
	char *p = ans;
	*p++ = '[';
	unsigned count = r->qr ? (an < MAX_ANSWERS ? an : MAX_ANSWERS) : 0;
	for (unsigned i = 0; i < count; i++) {
		off = get_name(m, n, (size_t)off, name, &nl);
		if (off < 0 || (size_t)off + 10 > n)
			return -1;
		const uint8_t *rr = m + off;
		unsigned rtype = (unsigned)rr[0] << 8 | rr[1];
		uint32_t ttl = (uint32_t)rr[4] << 24 | (uint32_t)rr[5] << 16 | (uint32_t)rr[6] << 8 | rr[7];
		size_t rdlen = (size_t)rr[8] << 8 | rr[9];
		off += 10;
		if ((size_t)off + rdlen > n)
			return -1;
		char rdata[NAME_MAX_ > INET6_ADDRSTRLEN ? NAME_MAX_ : INET6_ADDRSTRLEN];
		size_t rl;
		if ((rtype == 1 && rdlen == 4) || (rtype == 28 && rdlen == 16)) {
			if (!inet_ntop(rtype == 1 ? AF_INET : AF_INET6, m + off, rdata, sizeof(rdata)))
				return -1;
			rl = strlen(rdata);
		} else if (rtype == 2 || rtype == 5 || rtype == 12) {
			if (get_name(m, n, (size_t)off, rdata, &rl) < 0)
				return -1;
		} else {
			return -1;
		}
		if (i)
			*p++ = ',';
		p = PUT(p, "{\"type\":");
		const char *t = qtype_name(rtype);
		p = put_str(p, t, strlen(t));
		p = PUT(p, ",\"rdata\":");
		p = put_str(p, rdata, rl);
		p = PUT(p, ",\"ttl\":");
		p = put_u64(p, ttl);
		*p++ = '}';
		off += (long)rdlen;
	}
	*p++ = ']';
	r->answers_len = (size_t)(p - ans);
	return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *put_b64(char *p, const uint8_t *s, size_t n)
{
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		*p++ = B64[v >> 18];
		*p++ = B64[(v >> 12) & 63];
		*p++ = B64[(v >> 6) & 63];
		*p++ = B64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		*p++ = B64[v >> 18];
		*p++ = B64[(v >> 12) & 63];
		*p++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
		*p++ = '=';
	}
	return p;
}

static int reserve(struct vd_ctx *c, size_t need)
{
	if (c->out_len + need <= c->out_cap)
		return 0;
	uint64_t cap = c->out_cap;
	while (cap < c->out_len + need)
		cap <<= 1;
	char *p = realloc(c->out, cap);
	if (!p)
		return -1;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

/* One packet (the IP header first: the socket is SOCK_DGRAM) read at time_ns -> an item, or
 * nothing for what dnscap.parse_packet rejects. -1: no memory for the item. */
int vd_packet(struct vd_ctx *c, const uint8_t *d, size_t n, int64_t time_ns)
{
	const uint8_t *src, *dst, *l4;
	size_t l4n;
	unsigned proto;
	int v6;
	if (!n)
		return 0;
	if (d[0] >> 4 == 4 && n >= 20) {
		size_t ihl = (size_t)(d[0] & 0xF) * 4;
		if (ihl < 20)
			return 0;
		proto = d[9];
		src = d + 12;
		dst = d + 16;
		v6 = 0;
		l4 = d + (ihl < n ? ihl : n);
		l4n = ihl < n ? n - ihl : 0;
	} else if (d[0] >> 4 == 6 && n >= 40) {
		proto = d[6];
		src = d + 8;
		dst = d + 24;
		v6 = 1;
		l4 = d + 40;
		l4n = n - 40;
	} else {
		return 0;
	}
	if (l4n < 8 || (proto != 17 && (proto != 6 || l4n < 20)))
		return 0;
	if (reserve(c, ITEM_MAX))
		return -1;
	char *start = c->out + c->out_len, *p = start;
	if (c->items)
		*p++ = ',';
	*p++ = '[';
	if (time_ns < 0)
		time_ns = 0;
	p = put_u64(p, (uint64_t)time_ns);
	struct msg m;
	if (proto == 17 && !quick_parse(l4 + 8, l4n - 8, &m, c->answers)) {
		p = m.qr ? PUT(p, ",1,") : PUT(p, ",0,");
		p = put_qip(p, src, v6);
		*p++ = ',';
		p = put_u64(p, (unsigned)l4[0] << 8 | l4[1]);
		*p++ = ',';
		p = put_qip(p, dst, v6);
		*p++ = ',';
		p = put_u64(p, (unsigned)l4[2] << 8 | l4[3]);
		*p++ = ',';
		p = put_u64(p, m.id);
		*p++ = ',';
		p = put_str(p, m.host, m.host_len);
		*p++ = ',';
		p = put_str(p, m.qtype, strlen(m.qtype));
		*p++ = ',';
		p = put_str(p, m.rcode, strlen(m.rcode));
		*p++ = ',';
		p = put(p, c->answers, m.answers_len);
		p = PUT(p, ",\"\"]");
		c->parsed++;
	} else {
		p = PUT(p, ",-1,\"\",0,\"\",0,0,\"\",\"\",\"\",[],\"");
		p = put_b64(p, d, n);
		p = PUT(p, "\"]");
		c->raw++;
	}
	c->out_len += (uint64_t)(p - start);
	c->items++;
	return 0;
}

/* Read up to max packets from fd (non-blocking) into items; stops early when the socket is
 * empty or the items pass OUT_SOFT. Returns the packets read. */
long vd_read(struct vd_ctx *c, int fd, uint32_t max)
{
	long got = 0;
	for (uint32_t i = 0; i < max && c->out_len < OUT_SOFT; i++) {
		ssize_t n = recv(fd, c->pkt, PKT_MAX, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			if (errno != EINTR)
				c->errors++;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		got++;
		if (vd_packet(c, c->pkt, (size_t)n, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec))
			c->errors++; /* no memory: the packet is lost, and counted */
	}
	return got;
}
