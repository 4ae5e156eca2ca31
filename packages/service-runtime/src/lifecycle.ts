import type { Logger } from 'pino';

interface StopStep {
  readonly name: string;
  readonly run: () => Promise<void> | void;
}

/**
 * Orderly shutdown. Steps run one after another in the order they were added — so `main.ts` adds them as
 * "stop taking work, finish what is in hand, flush, close" — each bounded by the overall timeout. SIGTERM and
 * SIGINT start it; a fatal error starts it with exit code 1.
 */
export class Lifecycle {
  private readonly logger: Logger;
  private readonly steps: StopStep[] = [];
  private readonly timeoutMs: number;
  private stopping: Promise<void> | undefined;

  constructor(logger: Logger, options: { timeoutMs?: number } = {}) {
    this.logger = logger;
    this.timeoutMs = options.timeoutMs ?? 25000;
  }

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  onStop(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  /** Installs signal and last-resort error handlers. */
  installSignalHandlers(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        this.logger.info({ signal }, 'shutting down');
        void this.stop(0);
      });
    }
    process.on('uncaughtException', (error) => this.fatal(error, 'uncaught exception'));
    process.on('unhandledRejection', (error) => this.fatal(error, 'unhandled rejection'));
  }

  fatal(error: unknown, message: string): void {
    try {
      this.logger.fatal({ err: error }, message);
    } catch (logError) {
      // The error itself could not be logged (a hostile getter, say): say what we can without it.
      process.stderr.write(
        `${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), msg: message, error: String(error), logError: String(logError) })}\n`,
      );
    }
    void this.stop(1);
  }

  stop(exitCode: number): Promise<void> {
    this.stopping ??= this.runSteps(exitCode);
    return this.stopping;
  }

  private async runSteps(exitCode: number): Promise<void> {
    const timer = setTimeout(() => {
      this.logger.error({ timeoutMs: this.timeoutMs }, 'shutdown timed out; exiting');
      process.exit(exitCode || 1);
    }, this.timeoutMs);
    timer.unref();
    let code = exitCode;
    for (const step of this.steps) {
      const started = performance.now();
      try {
        await step.run();
        this.logger.info({ step: step.name, ms: Math.round(performance.now() - started) }, 'stopped');
      } catch (error) {
        code = code || 1;
        this.logger.error({ step: step.name, err: error }, 'stop step failed');
      }
    }
    clearTimeout(timer);
    this.logger.info({ exitCode: code }, 'shutdown complete');
    this.logger.flush();
    process.exitCode = code;
    // Let stdout drain, then leave even if a library left a handle open.
    setTimeout(() => process.exit(code), 100).unref();
  }
}
