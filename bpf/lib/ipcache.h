/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ipcache: longest-prefix map from an IPv4 address to the security identity behind it. */
#pragma once

#include "common.h"

struct ipcache_key {
	__u32	lpm_key;	/* prefix length in bits, 0..32 */
	__be32	addr;
};

struct ipcache_value {
	__u32	sec_identity;
	__u32	reserved_0;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct ipcache_value);
	__uint(max_entries, 512000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_ipcache SEC(".maps");

#define IDENTITY_WORLD	2

/**
 * ipcache_identity - identity of the peer at @addr
 * @addr: IPv4 address, network order
 *
 * Returns the identity of the longest matching prefix, or WORLD when no prefix covers @addr
 * (an address we know nothing about is outside the cluster, as Cilium treats it).
 */
static __always_inline __u32 ipcache_identity(__be32 addr)
{
	struct ipcache_key key = { .lpm_key = 32, .addr = addr };
	struct ipcache_value *v = bpf_map_lookup_elem(&membrane_ipcache, &key);

	return v ? v->sec_identity : IDENTITY_WORLD;
}
