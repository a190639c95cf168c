/**
 * The one mapping from thrown errors (Fastify's, Node's, the JSON parser's, a store's) to catalogue
 * codes. Statuses come from the catalogue; nothing here picks an HTTP status itself.
 */
import { ERRORS, type ErrorCode } from '../../core/errors.js';
import { isStoreUnavailable } from '../../stores/store-errors.js';

/** Error `code` -> catalogue code, for errors raised before or around the stages. */
const BY_CODE: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'SLUICE_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'SLUICE_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'SLUICE_BAD_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'SLUICE_BAD_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'SLUICE_BAD_REQUEST',
};

/** The catalogue code for a thrown error. Checked in order; the first rule that matches wins. */
export function codeForError(err: unknown): ErrorCode {
  const e = (err ?? {}) as { code?: unknown; statusCode?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined) {
    const mapped = BY_CODE[code];
    if (mapped) return mapped;
    // The JSON parser's own errors carry a catalogue code.
    if (code.startsWith('SLUICE_') && code in ERRORS) return code as ErrorCode;
  }
  if (err instanceof SyntaxError) return 'SLUICE_BAD_JSON';
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return 'SLUICE_BAD_REQUEST';
  if (isStoreUnavailable(err)) return 'SLUICE_STORE_UNAVAILABLE';
  return 'SLUICE_INTERNAL';
}
