// The shard-server's HTTP paths, for the servers that route them and the clients that call them.
export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';
/** The main's probe of a shard names the version it needs (versions.ts versionToken): another version is not ready. */
export const VERSION_HEADER = 'x-recshard-version';
/**
 * A request's time budget in ms, from its arrival (default: the server's --deadline-ms). Clients of the main may
 * send it; the main sends each shard call the budget it has left, so a shard drops work nobody waits for.
 */
export const TIMEOUT_HEADER = 'x-recshard-timeout-ms';
/** On a degraded answer (the zero failure policy): the shards whose tables were replaced by zeros, comma-separated. */
export const DEGRADED_HEADER = 'x-recshard-zero-embedding-shards';
/** The longest budget a request may ask for. */
export const MAX_TIMEOUT_MS = 600_000;
/** The sparse role's binary lookups (wire/lookup.ts). */
export const LOOKUP_PATH = '/v1/lookup';
/** The main's model metadata (model-info.ts). */
export const modelPath = (model: string) => `/v1/models/${model}`;
/** The main's predictions, JSON or binary (wire/predict.ts). */
export const predictPath = (model: string) => `${modelPath(model)}:predict`;
