/**
 * A flow as `membrane observe` prints it (the observe module's compact printer), without the
 * timestamp and with the client's ephemeral port as `*`, so tests can compare whole lines.
 */
import { formatCompact, type Flow } from '../../../src/observe/index.js';

export function compactFlow(flow: Flow): string {
  const line = formatCompact(flow);
  return line.replace(/^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}\.\d{3}: /, '').replace(/default\/mediabot:\d+/, 'default/mediabot:*').trimEnd();
}
