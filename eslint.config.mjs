// `npm run lint`: typescript-eslint with type information, and the layer rules of the codebase
// (README "Layout"). Formatting is Prettier's (`npm run format`); eslint-config-prettier turns off
// the stylistic rules that would fight it.
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

// Folders that are not the product: a product folder never imports them.
const notProduct = ['stack', 'cli', 'chaos', 'bench', 'scripts', 'tests', 'run-api'];
const outside = (dirs) => dirs.flatMap((d) => [`../${d}`, `../${d}/*`, `../../${d}`, `../../${d}/*`]);

/** `no-restricted-imports`: forbidden packages by exact name, forbidden folders by path pattern. */
const restrict = (groups, packages = []) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: packages.flatMap(([names, message]) => names.map((name) => ({ name, message }))),
      patterns: groups.map(([group, message]) => ({ group, message })),
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', '.data/**', 'tests/artifacts/**', 'tests/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        AbortController: 'readonly',
        AbortSignal: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        fetch: 'readonly',
        setImmediate: 'readonly',
        structuredClone: 'readonly',
        performance: 'readonly',
        queueMicrotask: 'readonly',
      },
    },
    rules: {
      // A promise nobody awaits loses its error and its ordering: in a pipeline of sends and
      // ledger writes that is a lost or doubled notification.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['**/*.{mjs,cjs,js}'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', exports: 'writable', module: 'writable' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // ---- layers -------------------------------------------------------------------------------------
  {
    // Workflow code runs in Temporal's deterministic sandbox: no I/O, no Node, no database or provider.
    files: ['workflows/**/*.ts'],
    rules: restrict(
      [
        [
          ['../db', '../db/*', '../providers', '../providers/*', '../config', '../config/*'],
          'workflows talk to the database and providers only through activities',
        ],
        [
          outside(notProduct),
          'the product does not import the local stack, the CLI, the drills, the benchmark or the run API',
        ],
      ],
      [
        [nodeBuiltins, 'workflow code runs in the deterministic sandbox: no Node built-ins (use activities)'],
        [
          ['pg', 'twilio', 'nodemailer', 'p-limit'],
          'workflows talk to the database and providers only through activities',
        ],
      ],
    ),
  },
  {
    files: [
      'workers/**/*.ts',
      'activities/**/*.ts',
      'providers/**/*.ts',
      'db/**/*.ts',
      'callbacks/**/*.ts',
      'codec/**/*.ts',
      'accounts/**/*.ts',
      'config/**/*.ts',
    ],
    rules: restrict([
      [
        outside(notProduct),
        'the product does not import the local stack, the CLI, the drills, the benchmark or the run API',
      ],
    ]),
  },
  {
    // Pure domain logic: no configuration, no I/O layers.
    files: ['domain/**/*.ts'],
    rules: restrict([
      [
        [
          '../config',
          '../config/*',
          '../db',
          '../db/*',
          '../providers',
          '../providers/*',
          '../activities',
          '../activities/*',
          '../workers',
          '../workers/*',
        ],
        'domain/ is pure: it takes values, not the config module or I/O layers',
      ],
      [
        outside(notProduct),
        'the product does not import the local stack, the CLI, the drills, the benchmark or the run API',
      ],
    ]),
  },
  {
    // The run API serves the CLI, the demo, the drills and the tests; it knows none of them.
    files: ['run-api/**/*.ts'],
    rules: restrict([
      [
        outside(['stack', 'cli', 'chaos', 'bench', 'scripts', 'tests']),
        'the run API does not import its callers or the local stack',
      ],
    ]),
  },
  {
    files: ['tests/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  prettier,
);
