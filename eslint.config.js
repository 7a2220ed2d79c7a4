// ESLint for the whole tree: typescript-eslint's recommended rules, import cycles (import-x/no-cycle), the layers
// of docs/architecture.md (each folder imports only the folders below it: import-x/no-restricted-paths) and a line
// width of 160. Formatting itself is Prettier's (.prettierrc.json); `make lint` runs both.
import stylistic from '@stylistic/eslint-plugin';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/** What each top-level folder may import from the others (test/ may import anything; nothing imports test/). */
const mayImport = {
  lib: [],
  contracts: ['lib'],
  operator: ['lib', 'contracts'],
  'shard-server': ['lib', 'contracts'],
  loadgen: ['lib', 'contracts'],
  models: ['lib', 'contracts', 'operator'],
  cli: ['lib', 'contracts', 'operator', 'shard-server', 'loadgen', 'models'],
  'local-cluster': ['lib'],
  bench: ['lib', 'contracts', 'operator', 'shard-server', 'loadgen', 'models', 'cli', 'local-cluster'],
  scripts: ['lib', 'contracts', 'operator', 'shard-server', 'loadgen', 'models', 'cli', 'bench', 'local-cluster'],
};
const folders = [...Object.keys(mayImport), 'test'];

/** Layers inside a folder, lowest first: each may import only those before it. */
const operatorLayers = ['api', 'planner', 'signals', 'autoscaling', 'builders', 'status', 'rollout', 'kube', 'server', 'controller', 'flags.ts', 'main.ts'];
const shardServerLayers = [['kernels'], ['model'], ['inference'], ['http'], ['roles.ts', 'server.ts', 'flags.ts', 'main.ts']];

const path = (folder, part) => (part.endsWith('.ts') ? `./${folder}/${part}` : `./${folder}/${part}/**`);

function zones() {
  const out = [];
  for (const [folder, allowed] of Object.entries(mayImport)) {
    const forbidden = folders.filter((f) => f !== folder && !allowed.includes(f));
    out.push({
      target: `./${folder}/**`,
      from: forbidden.map((f) => `./${f}/**`),
      message: `${folder}/ may import only ${allowed.join(', ') || 'nothing else in the repository'} (docs/architecture.md)`,
    });
  }
  // the model zoo reads the RecModel API and the planner's table list, nothing of the controller
  for (const l of operatorLayers.filter((x) => x !== 'api' && x !== 'planner'))
    out.push({ target: './models/**', from: path('operator', l), message: "models/ may use the operator's api/ and planner/ only" });
  // one zone per pair: a zone's `from` may not mix files and globs
  const below = (folder, layers) =>
    layers.forEach((layer, i) => {
      for (const upper of layers.slice(i + 1).flat()) {
        for (const lower of [layer].flat())
          out.push({
            target: path(folder, lower),
            from: path(folder, upper),
            message: `${folder}/${lower} is below ${folder}/${upper}: it may not import it (docs/architecture.md)`,
          });
      }
    });
  below('operator', operatorLayers);
  below('shard-server', shardServerLayers);
  return out;
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'operator/api/v1alpha1/types.generated.ts'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.js'],
    plugins: { 'import-x': importX, '@stylistic': stylistic },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'test/tsconfig.json' })],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': ['error', { zones: zones() }],
      'import-x/no-duplicates': 'error',
      'import-x/order': ['error', { groups: ['builtin', 'external', ['parent', 'sibling', 'index']], alphabetize: { order: 'asc', caseInsensitive: true } }],
      // Prettier wraps code at 160 columns; this holds strings and comments to the same width
      '@stylistic/max-len': ['error', { code: 160, ignoreUrls: true }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // inference is the web-free core of the data plane
    files: ['shard-server/inference/**', 'shard-server/model/**', 'shard-server/kernels/**', 'contracts/**', 'lib/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'express', message: 'the web layer lives in shard-server/http' }] }] },
  },
);
