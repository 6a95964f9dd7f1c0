// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import layers from './scripts/lint/layers.js';

/**
 * The layers of agent/, lowest first (docs/architecture.md). A folder imports only from its own
 * folder and from folders of lower layers; folders of one layer do not import each other.
 */
const LAYERS = [
  ['core'], // errors, ids, clock, labels, image references: depends on nothing
  ['model'], // the nouns every layer shares: types only
  ['ports'], // the interfaces of the outside world: engine, Git, source, backup store
  ['policy'], // the operator's policy and its check of a normalised desired state (pure)
  ['desired', 'state', 'docker', 'source'], // the loader; the adapters of the state directory, the engine, the source
  ['observe', 'plan', 'health', 'renovate'], // engine -> actual state; the pure planner; the health gate; renovate.json
  ['backup'], // backups, their store adapters, restores
  ['apply'], // the transaction and the plan executor
  ['revert'], // rollbacks written back to Git
  ['reconcile'], // one pass, its conditions, the loop
  ['schedule'], // scheduled jobs
  ['notify'], // events and channels
  ['http'], // the listener: webhook, metrics, health
  ['config'], // configuration file, environment, flags
  ['cli'], // the runtime (wiring) and one file per command
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.renovate/', '.cache/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']",
          message: 'Only the CLI entry point may call process.exit.',
        },
      ],
    },
  },
  {
    files: ['agent/**/*.ts'],
    plugins: { layers },
    rules: {
      'layers/layers': ['error', { root: 'agent', layers: LAYERS }],
      // No import loops, type-only imports included: each module has one place in the stack.
      'layers/no-cycle': ['error', { root: 'agent' }],
      // Every throw is a typed error with a code (core/errors.ts), never a bare Error.
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='process'][callee.property.name='exit']",
          message: 'Only the CLI entry point may call process.exit.',
        },
        {
          selector: "ThrowStatement > NewExpression[callee.name=/^(Error|TypeError|RangeError)$/]",
          message: 'Throw an AgentError (core/errors.ts) with a code and data, not a bare Error.',
        },
      ],
    },
  },
  {
    files: ['agent/cli/main.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
