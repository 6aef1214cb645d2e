/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local endpoints (pods on this node), keyed by their IPv4 address. */
#pragma once

#include "common.h"

#define ENDPOINT_F_INGRESS_ENFORCED	0x01
#define ENDPOINT_F_EGRESS_ENFORCED	0x02

struct endpoint_key {
	__be32	addr;
};

struct endpoint_info {
	__u32	ifindex;	/* host-side veth of the endpoint */
	__u32	sec_identity;
	__u16	endpoint_id;
	__u8	flags;		/* ENDPOINT_F_* */
	__u8	reserved_0;
	__u32	reserved_1;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} membrane_endpoints SEC(".maps");

/**
 * lookup_endpoint - the local endpoint that owns @addr
 * @addr: IPv4 address, network order
 *
 * Returns the endpoint's entry, or NULL when @addr is not a local endpoint.
 */
static __always_inline struct endpoint_info *lookup_endpoint(__be32 addr)
{
	struct endpoint_key key = { .addr = addr };

	return bpf_map_lookup_elem(&membrane_endpoints, &key);
}
