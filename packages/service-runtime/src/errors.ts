import { defineErrorCodes, errorClass } from '@switchyard/events';

export const runtimeErrors = defineErrorCodes('RT', {
  RT_CONFIG_INVALID: {
    retriable: false,
    meaning: 'One or more environment variables are missing or malformed; the message names each one.',
    fix: 'Set the named variables (see the service README) and start again.',
  },
  RT_REQUEST_INVALID: {
    retriable: false,
    meaning: 'An HTTP request body, query or parameter failed validation; `field` names the first bad field.',
    fix: 'Correct the named field.',
  },
  RT_NOT_FOUND: {
    retriable: false,
    meaning: 'No route matches the HTTP method and path.',
    fix: 'Check the path against the service README.',
  },
  RT_INTERNAL: {
    retriable: true,
    meaning: 'An unexpected error inside the service; the log line with the same request id has the cause.',
    fix: 'Retry; report it if it persists.',
  },
  RT_SHUTTING_DOWN: {
    retriable: true,
    meaning: 'The service is stopping and no longer accepts work.',
    fix: 'Retry against another instance or after the restart.',
  },
});
export type RuntimeErrorCode = keyof typeof runtimeErrors;

export const RuntimeError = errorClass('RuntimeError', runtimeErrors);
export type RuntimeError = InstanceType<typeof RuntimeError>;
