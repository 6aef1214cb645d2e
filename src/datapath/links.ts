/**
 * Links and addresses of the agent's network namespace, through the native addon's syscalls
 * (native/src/links.cc) instead of `ip -j`: a regeneration of 1,000 endpoints costs 1,000
 * `if_nametoindex` calls (microseconds) instead of a child process on the agent's event loop.
 */
import { native } from './native.js';

/** The ifindex of a link in this namespace (if_nametoindex); 0 when it does not exist. */
export function linkIndex(ifname: string): number {
  return native().linkIndex(ifname);
}

/**
 * IPv4 addresses of the node itself, on links up or down: these are reserved:host. One
 * RTM_GETADDR dump (getifaddrs would dump every link too: megabytes with a thousand pod veths,
 * on every regeneration).
 */
export function nodeAddresses(): string[] {
  return native().ipv4AddressDump();
}
