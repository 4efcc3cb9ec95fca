import { ErrorCode, ERROR_CODE_NAMES, type ErrorCodeName } from '../wire/codes.js';

export { ErrorCode, type ErrorCodeName };

// Operating errors: every one carries a stable code. Callers branch on `code`, never on text.
export class DkvError extends Error {
  // Numbers a caller may act on (QUORUM_FAILED's `answered` and `needed`); they cross the wire
  // as fields of the ERROR body.
  readonly details: Readonly<Record<string, number>> | undefined;

  constructor(
    readonly code: ErrorCodeName,
    message: string,
    options?: ErrorOptions & { details?: Record<string, number> },
  ) {
    super(message, options);
    this.name = 'DkvError';
    this.details = options?.details;
  }

  get wireCode(): number {
    return ErrorCode[this.code];
  }

  // An error received on the wire. An unknown number (a newer server) keeps its number.
  static fromWire(code: number, message: string, details?: Record<string, number>): DkvError {
    const name = ERROR_CODE_NAMES.get(code);
    if (name === undefined) return new DkvError('INTERNAL', `error ${code}: ${message}`);
    return new DkvError(name, message, details === undefined ? undefined : { details });
  }
}

// What a caller is told of any error: an unexpected one is INTERNAL.
export function asDkvError(error: unknown): DkvError {
  if (isDkvError(error)) return error;
  return new DkvError('INTERNAL', `internal error: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

export function isDkvError(value: unknown, code?: ErrorCodeName): value is DkvError {
  return value instanceof DkvError && (code === undefined || value.code === code);
}
