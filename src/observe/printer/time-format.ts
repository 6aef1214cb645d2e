/**
 * Hubble's `--time-format` names (`hubble/pkg/time`: FormatNames, FormatNameToLayout) and the Go
 * layouts they stand for, applied to a flow's RFC 3339 time. Times print in UTC, as Hubble's
 * `Timestamp.AsTime()`; `.999` layouts drop trailing zeros (and the dot when nothing is left).
 */

export const TIME_FORMATS = [
  'StampMilli',
  'YearMonthDay',
  'YearMonthDayHour',
  'YearMonthDayHourMinute',
  'RFC3339',
  'RFC3339Milli',
  'RFC3339Micro',
  'RFC3339Nano',
  'RFC1123Z',
] as const;
export type TimeFormat = (typeof TIME_FORMATS)[number];

/** The format of a `--time-format` value, any case (as Hubble lower-cases it); undefined if unknown. */
export function timeFormatNamed(name: string): TimeFormat | undefined {
  return TIME_FORMATS.find((f) => f.toLowerCase() === name.toLowerCase());
}

/** Go's time-layout month and day abbreviations (`Jan`, `Mon`), as Hubble's layouts print and parse them. */
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;
export const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Go's `.999…`: up to `digits` fraction digits, trailing zeros removed, no dot for zero. */
function trimmedFraction(nanos: string, digits: number): string {
  const f = nanos.slice(0, digits).replace(/0+$/, '');
  return f === '' ? '' : `.${f}`;
}

/** `time` (RFC 3339, up to nanoseconds) in `format`, UTC; `N/A` when it cannot be read. */
export function formatFlowTime(time: string, format: TimeFormat = 'StampMilli'): string {
  const m = RFC3339.exec(time);
  if (!m) return 'N/A';
  const nanos = (m[7] ?? '').padEnd(9, '0');
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8]}`);
  if (Number.isNaN(d.getTime())) return 'N/A';
  const Y = pad(d.getUTCFullYear(), 4);
  const M = pad(d.getUTCMonth() + 1);
  const D = pad(d.getUTCDate());
  const h = pad(d.getUTCHours());
  const min = pad(d.getUTCMinutes());
  const s = pad(d.getUTCSeconds());
  const date = `${Y}-${M}-${D}`;
  switch (format) {
    case 'StampMilli':
      return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${h}:${min}:${s}.${nanos.slice(0, 3)}`;
    case 'YearMonthDay':
      return date;
    case 'YearMonthDayHour':
      return `${date}T${h}Z`;
    case 'YearMonthDayHourMinute':
      return `${date}T${h}:${min}Z`;
    case 'RFC3339':
      return `${date}T${h}:${min}:${s}Z`;
    case 'RFC3339Milli':
      return `${date}T${h}:${min}:${s}${trimmedFraction(nanos, 3)}Z`;
    case 'RFC3339Micro':
      return `${date}T${h}:${min}:${s}${trimmedFraction(nanos, 6)}Z`;
    case 'RFC3339Nano':
      return `${date}T${h}:${min}:${s}${trimmedFraction(nanos, 9)}Z`;
    case 'RFC1123Z':
      return `${DAYS[d.getUTCDay()]}, ${D} ${MONTHS[d.getUTCMonth()]} ${Y} ${h}:${min}:${s} +0000`;
  }
}
