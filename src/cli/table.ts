/** Column output in the style of `cilium-dbg`: padded columns, multi-line cells. */
export function renderTable(headers: readonly (readonly string[])[], rows: readonly (readonly (string | readonly string[])[])[]): string {
  const cols = headers[0]?.length ?? 0;
  const cells = rows.map((r) => r.map((c) => (typeof c === 'string' ? [c] : [...c])));
  const width = Array.from({ length: cols }, (_, i) =>
    Math.max(...headers.map((h) => (h[i] ?? '').length), ...cells.map((r) => Math.max(0, ...(r[i] ?? ['']).map((s) => s.length)))),
  );
  const line = (parts: readonly string[]): string =>
    parts.map((p, i) => (i === cols - 1 ? p : p.padEnd((width[i] ?? 0) + 3))).join('').trimEnd();
  const out: string[] = headers.map((h) => line(h));
  for (const r of cells) {
    const height = Math.max(...r.map((c) => c.length));
    for (let j = 0; j < height; j++) out.push(line(r.map((c) => c[j] ?? '')));
  }
  return `${out.join('\n')}\n`;
}
