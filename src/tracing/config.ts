/**
 * Whether and how the agent traces: `--otlp-endpoint` or the standard OpenTelemetry environment
 * variables (specification: "Environment Variable Specification" and "OTLP Exporter
 * Configuration"). Off unless an endpoint is given; `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none` turn it off again.
 */
import { membraneError } from '../errors/index.js';
import { EXPORTER_QUEUE_DEFAULTS, type ExporterQueueOptions } from './exporter-queue.js';

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

const SAMPLERS: readonly SamplerName[] = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

/** Plain data (it crosses to proxy worker threads). */
export interface TracingConfig {
  /** The OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
  readonly tracesUrl: string;
  /** OTEL_SERVICE_NAME (default `membrane-agent`). */
  readonly serviceName: string;
  readonly nodeName: string;
  /** OTEL_TRACES_SAMPLER (default `parentbased_always_on`, the specification's default). */
  readonly sampler: SamplerName;
  /** OTEL_TRACES_SAMPLER_ARG for the ratio samplers, 0..1 (default 1). */
  readonly samplerRatio: number;
  readonly queue: ExporterQueueOptions;
}

/**
 * `--otlp-endpoint` is the collector's OTLP/HTTP base URL like OTEL_EXPORTER_OTLP_ENDPOINT
 * (`/v1/traces` appended); OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given. The flag wins.
 * @returns null when tracing is off.
 * @throws MEMBRANE_ERR_CLI_USAGE for a malformed URL, sampler or number, naming the flag or variable.
 */
export function tracingConfig(flagEndpoint: string | null | undefined, nodeName: string, env: NodeJS.ProcessEnv = process.env): TracingConfig | null {
  if (isTrue(env.OTEL_SDK_DISABLED) || (env.OTEL_TRACES_EXPORTER ?? '').trim().toLowerCase() === 'none') return null;
  let tracesUrl: string;
  if (flagEndpoint) tracesUrl = baseUrl('--otlp-endpoint', flagEndpoint);
  else if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) tracesUrl = url('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT).href;
  else if (env.OTEL_EXPORTER_OTLP_ENDPOINT) tracesUrl = baseUrl('OTEL_EXPORTER_OTLP_ENDPOINT', env.OTEL_EXPORTER_OTLP_ENDPOINT);
  else return null;

  const samplerText = (env.OTEL_TRACES_SAMPLER ?? 'parentbased_always_on').trim().toLowerCase();
  if (!SAMPLERS.includes(samplerText as SamplerName)) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `OTEL_TRACES_SAMPLER ${JSON.stringify(env.OTEL_TRACES_SAMPLER)}: expected one of ${SAMPLERS.join(', ')}`);
  }
  const ratio = env.OTEL_TRACES_SAMPLER_ARG === undefined || env.OTEL_TRACES_SAMPLER_ARG === '' ? 1 : Number(env.OTEL_TRACES_SAMPLER_ARG);
  if (!(ratio >= 0 && ratio <= 1)) {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `OTEL_TRACES_SAMPLER_ARG ${JSON.stringify(env.OTEL_TRACES_SAMPLER_ARG)}: expected a ratio from 0 to 1`);
  }
  return {
    tracesUrl,
    serviceName: env.OTEL_SERVICE_NAME?.trim() || 'membrane-agent',
    nodeName,
    sampler: samplerText as SamplerName,
    samplerRatio: ratio,
    queue: {
      maxQueueSize: positive(env, 'OTEL_BSP_MAX_QUEUE_SIZE', EXPORTER_QUEUE_DEFAULTS.maxQueueSize),
      maxExportBatchSize: positive(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', EXPORTER_QUEUE_DEFAULTS.maxExportBatchSize),
      scheduledDelayMs: positive(env, 'OTEL_BSP_SCHEDULE_DELAY', EXPORTER_QUEUE_DEFAULTS.scheduledDelayMs),
      exportTimeoutMs: positive(env, 'OTEL_BSP_EXPORT_TIMEOUT', EXPORTER_QUEUE_DEFAULTS.exportTimeoutMs),
    },
  };
}

function isTrue(v: string | undefined): boolean {
  return (v ?? '').trim().toLowerCase() === 'true';
}

function url(name: string, text: string): URL {
  let u: URL;
  try {
    u = new URL(text.trim());
  } catch {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${name} ${JSON.stringify(text)}: not a URL (expected e.g. http://127.0.0.1:4318)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${name} ${JSON.stringify(text)}: OTLP/HTTP needs an http:// or https:// URL`);
  }
  return u;
}

function baseUrl(name: string, text: string): string {
  const u = url(name, text);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/traces`;
  return u.href;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw membraneError('MEMBRANE_ERR_CLI_USAGE', `${name} ${JSON.stringify(raw)}: expected a positive whole number`);
  return n;
}
