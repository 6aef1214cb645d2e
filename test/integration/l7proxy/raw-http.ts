/**
 * Helpers for tests that speak raw HTTP/1.1 bytes to the proxy: a policy with given HTTP rules on
 * deathstar:80 (the harness maps the upstream's port to 80), and a reader for the bytes that came back.
 */

/** Ingress of deathstar on TCP/80: empire ships may send requests matching one of `rules`. */
export function httpRulesPolicy(rules: ReadonlyArray<Record<string, string>>): string {
  const http = rules.map((r) => `            - ${JSON.stringify(r)}`).join('\n');
  return `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: rule1
  namespace: default
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
    - fromEndpoints:
        - matchLabels: {org: empire}
      toPorts:
        - ports:
            - port: "80"
              protocol: TCP
          rules:
            http:
${http}
`;
}

/** The first response in a raw byte stream: status, lower-cased headers, and every byte after its head. */
export function parseResponse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end < 0 ? '' : text.slice(end + 4) };
}

/** Status lines in a raw byte stream, in order (test bodies never contain "HTTP/1.x NNN"). */
export function statusLines(text: string): string[] {
  return [...text.matchAll(/HTTP\/1\.[01] \d{3}[^\r]*/g)].map((m) => m[0]);
}
