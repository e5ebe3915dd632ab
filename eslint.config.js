// Lint: typescript-eslint's recommended rules, plus the layering of STYLE.md
// (checked with scripts/check-layers.mjs, which also refuses import cycles).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const layer = (from, forbidden) => ({
  files: [`src/${from}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: forbidden.map((dir) => ({
          group: [`**/${dir}/*`, `**/${dir}/**`],
          message: `src/${from} must not import src/${dir} (see STYLE.md layout)`,
        })),
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-results/**', '.upshift/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  layer('domain', ['store', 'engine', 'drivers', 'platform', 'server', 'agent', 'cli']),
  layer('store', ['engine', 'drivers', 'platform', 'server', 'agent', 'cli']),
  layer('drivers', ['store', 'engine', 'server', 'agent', 'cli']),
  layer('platform', ['store', 'engine', 'server', 'agent', 'cli', 'drivers']),
  layer('engine', ['server', 'agent', 'cli', 'drivers']),
  layer('cli', ['server', 'engine', 'store', 'drivers', 'agent']),
);
