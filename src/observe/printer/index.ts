export { escapeTerminal } from './escape.js';
export { flowTypeName, formatIdentity, formatStampMilli, hostNames, verdictName, type TimeZone } from './format.js';
export {
  compact,
  dict,
  isOutputMode,
  json,
  output,
  OUTPUT_MODES,
  withIPTranslation,
  withNodeName,
  withColor,
  withJsonpbEncoder,
  withTimeFormat,
  withTimeZone,
  withWriter,
  type OutputMode,
  type PrinterOption,
  type PrinterOptions,
  type TextWriter,
} from './options.js';
export { FlowPrinter, formatCompact, resolvePrinterOptions } from './printer.js';
export { autoColor, COLOR_MODES, type ColorMode } from './color.js';
export { DAYS, formatFlowTime, MONTHS, timeFormatNamed, TIME_FORMATS, type TimeFormat } from './time-format.js';
