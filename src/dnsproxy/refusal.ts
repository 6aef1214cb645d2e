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

import { dnsRequestFlow, type Flow } from '../observe/index.js';
import type { DnsExchange, DnsFlowSite } from './log.js';
import { typeName } from './wire.js';

type RequestInput = Parameters<typeof dnsRequestFlow>[0];

export function refusedRequestFlow(x: DnsExchange, site: DnsFlowSite, qtypes: readonly number[]): Flow {
  return dnsRequestFlow({
    source: x.source.flowEndpoint,
    destination: x.destination,
    ip: { source: x.client.ip, destination: x.server.ip },
    sourcePort: x.client.port,
    destinationPort: x.server.port,
    direction: 'EGRESS',
    nodeName: site.nodeName,
    transport: x.protocol === 17 ? 'UDP' : 'TCP',
    time: x.startedAt,
    proxyPort: site.proxyPort,
    verdict: 'ERROR',
    dns: { query: x.qname, qtypes: qtypes.map(typeName) },
  } as RequestInput);
}
