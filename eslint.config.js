// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/node_modules/**', '.tools/**', '.cache/**', 'bench/reports/**', '**/*.d.ts'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          allowDefaultProject: ['vitest.config.ts'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/require-await': 'off',
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@switchyard/*/src/*', '@switchyard/*/dist/*'], message: "Import a package's public entry, not its internals." },
            { group: ['**/services/*', '../../services/**'], message: 'Services never import each other; share through packages/.' },
            { group: ['kafkajs'], message: 'kafkajs stays inside packages/kafka; use @switchyard/kafka.' },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: "Read the environment only in a service's src/main.ts (pass it to loadConfig)." },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The Kafka module, and benchmarks whose baseline is a bare kafkajs consumer.
    files: ['packages/kafka/**', 'bench/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Places that legitimately read the environment: service entry points, the launcher and test/bench tooling.
    files: ['services/*/src/main.ts', 'services/*/src/cli.ts', 'infra/src/**', 'packages/testkit/src/**', 'bench/**', '**/test/**', 'packages/simulators/src/cli.ts', 'packages/auth/src/cli.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // Cross-service tests may read each service's error registry to check docs/errors.md.
    files: ['test/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      // expect.any(…) and friends are typed `any`.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-empty-pattern': 'off',
      'no-empty-pattern': 'off',
    },
  },
);
