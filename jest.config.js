/**
 * Jest runs unit tests (fake connector, fake clock) and integration tests (a real PostgreSQL server
 * that the global setup starts on 127.0.0.1, or the one TEST_DATABASE_URL names).
 * @type {import('jest').Config}
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/spec'],
  testMatch: ['**/*.spec.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  globalSetup: '<rootDir>/spec/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/spec/helpers/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/spec/helpers/setup-after-env.ts'],
  testTimeout: 30000,
  maxWorkers: 2,
};
