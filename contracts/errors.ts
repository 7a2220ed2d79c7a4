// The one error catalogue of the data plane: stable codes, HTTP statuses, and messages that name the field. It
// sits below both the wire decoders (contracts/wire) and the shard-server's inference code, which throw its errors;
// the shard-server's error handler (shard-server/http/error-handler.ts) turns them into {"error": {"code", "message"}}.
export const ErrorCode = {
  InvalidJson: { status: 400, code: 'INVALID_JSON' },
  InvalidField: { status: 400, code: 'INVALID_FIELD' },
  UnknownTable: { status: 400, code: 'UNKNOWN_TABLE' },
  IndexOutOfRange: { status: 400, code: 'INDEX_OUT_OF_RANGE' },
  InvalidRequest: { status: 400, code: 'INVALID_REQUEST' },
  /** The request's body did not arrive within its deadline (a trickled or stalled upload). */
  RequestTimeout: { status: 408, code: 'REQUEST_TIMEOUT' },
  BatchTooLarge: { status: 413, code: 'BATCH_TOO_LARGE' },
  BodyTooLarge: { status: 413, code: 'BODY_TOO_LARGE' },
  UnsupportedMediaType: { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  /** A shard serving mutual TLS was called without a certificate its CA signed (only the probes are open). */
  ClientCertificateRequired: { status: 403, code: 'CLIENT_CERTIFICATE_REQUIRED' },
  ModelNotFound: { status: 404, code: 'MODEL_NOT_FOUND' },
  NotFound: { status: 404, code: 'NOT_FOUND' },
  /** A lookup planned for another plan or artifact version than the shard serves (a version-skewed main). */
  VersionMismatch: { status: 409, code: 'VERSION_MISMATCH' },
  MethodNotAllowed: { status: 405, code: 'METHOD_NOT_ALLOWED' },
  NotReady: { status: 503, code: 'NOT_READY' },
  /** Shed by admission control before any work: the queue is full or the deadline cannot be met (with Retry-After). */
  Overloaded: { status: 503, code: 'OVERLOADED' },
  /** A shard refused the main's lookup (4xx) or answered something that is not a lookup response. */
  ShardBadResponse: { status: 502, code: 'SHARD_BAD_RESPONSE' },
  ShardUnavailable: { status: 503, code: 'SHARD_UNAVAILABLE' },
  /** The main's shard answered VERSION_MISMATCH: it serves another plan or artifact (the main answers nothing mixed). */
  ShardVersionMismatch: { status: 503, code: 'SHARD_VERSION_MISMATCH' },
  DeadlineExceeded: { status: 504, code: 'DEADLINE_EXCEEDED' },
  /** The client closed its connection before the answer (nginx's 499): counted, never sent. */
  ClientClosed: { status: 499, code: 'CLIENT_CLOSED' },
  Internal: { status: 500, code: 'INTERNAL' },
} as const;

export type ErrorKind = (typeof ErrorCode)[keyof typeof ErrorCode];

export class ServeError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ServeError';
  }

  get status(): number {
    return this.kind.status;
  }

  body() {
    return { error: { code: this.kind.code, message: this.message } };
  }
}

export const fail = (kind: ErrorKind, message: string): never => {
  throw new ServeError(kind, message);
};
