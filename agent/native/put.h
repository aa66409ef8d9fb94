// SPDX-License-Identifier: MIT
/*
 * Writing JSON text into a buffer the caller has reserved room in: the pieces fastpath.c (wire
 * lines) and dnsfast.c (DNS items) share. Each returns where the next byte goes.
 */
#ifndef VIGIL_PUT_H
#define VIGIL_PUT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

static inline char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT(p, lit) put((p), (lit), sizeof(lit) - 1)

static inline char *put_u64(char *p, uint64_t v)
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

static inline char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

/* An address as Python prints it (bpfsensor.ip, dnscap._ip): inet_ntop, with an IPv4-mapped IPv6
 * address shown as the IPv4 address. */
static inline char *put_ip(char *p, int family, const uint8_t *raw)
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

#endif
