import { defineErrorCodes, errorClass } from '@switchyard/events';

export const healthMonitorErrors = defineErrorCodes('HM', {
  HM_PUBLISH_FAILED: {
    retriable: true,
    meaning: 'A health change could not be produced to the API health topic; it is retried on the next probe.',
    fix: 'Check Kafka; /readyz shows the producer state.',
  },
});
export type HealthMonitorErrorCode = keyof typeof healthMonitorErrors;

export const HealthMonitorError = errorClass('HealthMonitorError', healthMonitorErrors);
export type HealthMonitorError = InstanceType<typeof HealthMonitorError>;
