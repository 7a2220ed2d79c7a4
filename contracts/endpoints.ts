// The shard-server's HTTP paths, for the servers that route them and the clients that call them.
export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
export const METRICS_PATH = '/metrics';
/** The main's probe of a shard names the version it needs (versions.ts versionToken): another version is not ready. */
export const VERSION_HEADER = 'x-recshard-version';
/** The sparse role's binary lookups (wire/lookup.ts). */
export const LOOKUP_PATH = '/v1/lookup';
/** The main's model metadata (model-info.ts). */
export const modelPath = (model: string) => `/v1/models/${model}`;
/** The main's predictions, JSON or binary (wire/predict.ts). */
export const predictPath = (model: string) => `${modelPath(model)}:predict`;
