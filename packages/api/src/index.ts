export * from './commands.js';
export * from './errors.js';
