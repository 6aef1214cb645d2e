/**
 * The flow of a query the proxy refused before policy judged it — opcode not QUERY (NOTIMP), not
 * exactly one question, too many queries in flight in all or from its address (REFUSED): one
 * `dns-request` flow with verdict ERROR, and no response flow.
 *
 * Cilium's semantic: `pkg/fqdn/dnsproxy/proxy.go` `ServeDNS` reports such a refusal through
 * `NotifyOnDNSMsg` with the request message and `stat.Err` set; the agent's notifier
 * (`daemon/cmd/fqdn.go` `notifyOnDNSMsg`) makes it a `accesslog.TypeRequest` record with
 * `VerdictError` ("Error: …"), and Hubble (`pkg/hubble/parser/seven`) shows that as an L7 REQUEST
 * flow with verdict ERROR. DROPPED stays what it is there: a policy denial (`VerdictDenied`).
 * `qtypes` lists every question's type, as Cilium's `ExtractMsgDetails` does (none for qdcount 0).
 */

import type { Flow } from '../observe/index.js';
import { requestFlow, type DnsExchange, type DnsFlowSite } from './log.js';
import { typeName } from './wire.js';

export function refusedRequestFlow(x: DnsExchange, site: DnsFlowSite, qtypes: readonly number[]): Flow {
  return requestFlow(x, site, 'ERROR', qtypes.map(typeName));
}
