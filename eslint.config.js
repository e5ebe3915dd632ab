// Lint: typescript-eslint's recommended rules, plus the layering of scripts/layers.mjs
// (the same table scripts/check-layers.mjs checks, with import cycles, in `npm test`).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';
import { importTarget, layerOf, layeringProblem, projectPath } from './scripts/layers.mjs';

/** Restricted imports between layers: each import of a layered file is checked against the table. */
const allowedImports = {
  meta: {
    type: 'problem',
    docs: { description: 'imports between layers follow scripts/layers.mjs' },
    messages: { layer: '{{specifier}}: {{problem}} (scripts/layers.mjs)' },
    schema: [],
  },
  create(context) {
    const file = projectPath(context.filename);
    if (layerOf(file) === undefined) return {};
    const check = (node) => {
      if (!node.source || typeof node.source.value !== 'string') return;
      const target = importTarget(file, node.source.value);
      const problem = target === undefined ? undefined : layeringProblem(file, target);
      if (problem) context.report({ node: node.source, messageId: 'layer', data: { specifier: node.source.value, problem } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test-results/**', '.upshift/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    plugins: { layers: { rules: { 'allowed-imports': allowedImports } } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      'layers/allowed-imports': 'error',
    },
  },
  // The console runs in the browser.
  { files: ['web/**'], ignores: ['web/vite.config.ts'], languageOptions: { globals: { ...globals.browser } } },
);
