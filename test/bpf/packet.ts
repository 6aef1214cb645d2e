/** Minimal Ethernet/IPv4/L4 packets for BPF_PROG_TEST_RUN (checksums are not checked on tc). */
import { ipv4ToNumber } from '../../src/datapath/layout.js';

export interface PacketSpec {
  src: string;
  dst: string;
  protocol: number;
  sport?: number;
  dport?: number;
  /** TCP flags byte; SYN by default. */
  tcpFlags?: number;
  icmpType?: number;
  /** IPv4 flags+fragment offset field. */
  fragOff?: number;
  /** IPv4 identification (names a fragmented datagram). */
  ipId?: number;
  /** A fragment after the first: the IP header is followed by this many payload bytes, no L4 header. */
  payloadOnly?: number;
  /** Bytes after the ICMP header (an ICMP error quotes the offending packet's IP header + 8 bytes). */
  icmpPayload?: Uint8Array;
}

export function ipv4Packet(p: PacketSpec): Uint8Array {
  const l4Len = p.payloadOnly ?? (p.protocol === 6 ? 20 : 8) + (p.protocol === 1 ? (p.icmpPayload?.length ?? 0) : 0);
  const buf = new Uint8Array(14 + 20 + l4Len);
  const v = new DataView(buf.buffer);
  v.setUint16(12, 0x0800);
  const ip = 14;
  v.setUint8(ip, 0x45);
  v.setUint16(ip + 2, 20 + l4Len);
  v.setUint16(ip + 4, p.ipId ?? 0);
  v.setUint16(ip + 6, p.fragOff ?? 0);
  v.setUint8(ip + 8, 64);
  v.setUint8(ip + 9, p.protocol);
  v.setUint32(ip + 12, ipv4ToNumber(p.src));
  v.setUint32(ip + 16, ipv4ToNumber(p.dst));
  const l4 = ip + 20;
  if (p.payloadOnly !== undefined) {
    buf.fill(0xab, l4);
  } else if (p.protocol === 1) {
    v.setUint8(l4, p.icmpType ?? 8);
    v.setUint16(l4 + 4, p.sport ?? 1);
    if (p.icmpPayload) buf.set(p.icmpPayload, l4 + 8);
  } else {
    v.setUint16(l4, p.sport ?? 40000);
    v.setUint16(l4 + 2, p.dport ?? 80);
    if (p.protocol === 6) {
      v.setUint8(l4 + 12, 0x50);
      v.setUint8(l4 + 13, p.tcpFlags ?? 0x02);
    }
  }
  return buf;
}

/** The part of a packet an ICMP error quotes: its IP header and the first 8 bytes after it. */
export function icmpQuote(packet: Uint8Array): Uint8Array {
  return packet.slice(14, 14 + 20 + 8);
}
