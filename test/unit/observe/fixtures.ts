import {
  dropFlow,
  httpRequestFlow,
  httpResponseFlow,
  policyVerdictFlow,
  type Flow,
  type FlowEndpoint,
} from '../../../src/observe/index.js';

export const tiefighter: FlowEndpoint = {
  ID: 1201,
  identity: 25698,
  namespace: 'default',
  labels: ['k8s:class=tiefighter', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:org=empire'],
  pod_name: 'tiefighter',
};
export const xwing: FlowEndpoint = {
  ID: 1202,
  identity: 63406,
  namespace: 'default',
  labels: ['k8s:class=xwing', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:org=alliance'],
  pod_name: 'xwing',
};
export const deathstarW: FlowEndpoint = {
  ID: 1203,
  identity: 6822,
  namespace: 'default',
  labels: ['k8s:class=deathstar', 'k8s:io.kubernetes.pod.namespace=default', 'k8s:org=empire'],
  pod_name: 'deathstar-b4b8ccfb5-w84sn',
};
export const deathstarF: FlowEndpoint = { ...deathstarW, ID: 1204, pod_name: 'deathstar-b4b8ccfb5-f75xw' };

export const IPS = { tiefighter: '10.0.1.10', xwing: '10.0.1.11', deathstarW: '10.0.1.20', deathstarF: '10.0.1.21' } as const;
export const LANDING = 'http://deathstar.default.svc.cluster.local/v1/request-landing';
export const EXHAUST = 'http://deathstar.default.svc.cluster.local/v1/exhaust-port';

/** The flows behind the reference `hubble observe` lines of the Star Wars demo (year 2024, UTC). */
export function starWarsFlows(): Flow[] {
  const common = { direction: 'INGRESS' as const, nodeName: 'node-1', proxyPort: 15001 };
  const landingReq = {
    ...common,
    source: tiefighter,
    destination: deathstarW,
    ip: { source: IPS.tiefighter, destination: IPS.deathstarW },
    sourcePort: 42746,
    destinationPort: 80,
  };
  const exhaustReq = {
    ...common,
    source: tiefighter,
    destination: deathstarF,
    ip: { source: IPS.tiefighter, destination: IPS.deathstarF },
    sourcePort: 44396,
    destinationPort: 80,
  };
  const xwingSyn = {
    time: '2024-04-05T21:03:18.803512345Z',
    source: xwing,
    destination: deathstarF,
    ip: { source: IPS.xwing, destination: IPS.deathstarF },
    l4: { TCP: { source_port: 45706, destination_port: 80, flags: { SYN: true } } },
    direction: 'INGRESS' as const,
    nodeName: 'node-1',
  };
  return [
    httpRequestFlow({
      ...landingReq,
      time: '2024-04-05T21:03:13.283111222Z',
      verdict: 'FORWARDED',
      http: { method: 'POST', url: LANDING, protocol: 'HTTP/1.1' },
    }),
    httpResponseFlow({
      ...landingReq,
      time: '2024-04-05T21:03:13.283999000Z',
      verdict: 'FORWARDED',
      latencyNs: 1_400_000,
      http: { code: 200, method: 'POST', url: LANDING, protocol: 'HTTP/1.1' },
    }),
    httpRequestFlow({
      ...exhaustReq,
      time: '2024-04-05T21:03:15.919000001Z',
      verdict: 'DROPPED',
      http: { method: 'PUT', url: EXHAUST, protocol: 'HTTP/1.1' },
    }),
    httpResponseFlow({
      ...exhaustReq,
      time: '2024-04-05T21:03:15.919500000Z',
      verdict: 'FORWARDED',
      latencyNs: 120_000,
      http: { code: 403, method: 'PUT', url: EXHAUST, protocol: 'HTTP/1.1' },
    }),
    policyVerdictFlow({ ...xwingSyn, verdict: 'DROPPED', matchType: 0, dropReason: 133 }),
    dropFlow({ ...xwingSyn, reason: 133 }),
  ];
}

/** The reference lines, verbatim from cilium-overview-and-starwars-demo.txt. */
export const REFERENCE_LINES = [
  'Apr  5 21:03:13.283: default/tiefighter:42746 (ID:25698) -> default/deathstar-b4b8ccfb5-w84sn:80 (ID:6822) http-request FORWARDED (HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing)',
  'Apr  5 21:03:13.283: default/tiefighter:42746 (ID:25698) <- default/deathstar-b4b8ccfb5-w84sn:80 (ID:6822) http-response FORWARDED (HTTP/1.1 200 1ms (POST http://deathstar.default.svc.cluster.local/v1/request-landing))',
  'Apr  5 21:03:15.919: default/tiefighter:44396 (ID:25698) -> default/deathstar-b4b8ccfb5-f75xw:80 (ID:6822) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)',
  'Apr  5 21:03:15.919: default/tiefighter:44396 (ID:25698) <- default/deathstar-b4b8ccfb5-f75xw:80 (ID:6822) http-response FORWARDED (HTTP/1.1 403 0ms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port))',
  'Apr  5 21:03:18.803: default/xwing:45706 (ID:63406) <> default/deathstar-b4b8ccfb5-f75xw:80 (ID:6822) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)',
  'Apr  5 21:03:18.803: default/xwing:45706 (ID:63406) <> default/deathstar-b4b8ccfb5-f75xw:80 (ID:6822) Policy denied DROPPED (TCP Flags: SYN)',
] as const;
