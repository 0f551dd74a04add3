/**
 * A client's text made safe to echo in a reply or a log line: printable
 * ASCII only (a CR, NUL or UTF-8 byte from the client would break the
 * one-line "+OK text" / "-ERR text" format, RFC 1939 §3), and short.
 */
export const printable = (text: string, max = 40): string =>
  text.slice(0, max).replace(/[^\x20-\x7e]/g, '?');
