import pino, { type Logger } from 'pino';

/**
 * Paths pino censors wherever they appear in a logged object. AEGIS logs ids, not values, so this is
 * the second line of defence: it catches a value or token that reaches a log call by mistake.
 */
export const redactPaths = [
  'value',
  '*.value',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  'body',
  '*.body',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { service: 'aegis' }, redact: { paths: redactPaths, censor: '[REDACTED]' } }, destination);
}
