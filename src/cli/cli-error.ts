// The CLI's exit codes and the errors that carry them: 0 done, 1 failed, 2 usage.

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

/** A failure to report as it is, with an optional next step on its own line. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

/** The command line itself is wrong. */
export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, hint, EXIT_USAGE)
    this.name = 'UsageError'
  }
}

/** An error with what the command was doing in front: "mounting 'generic' at 'generic'". */
export class ContextError extends Error {
  constructor(
    readonly context: string,
    override readonly cause: unknown,
  ) {
    super(context)
    this.name = 'ContextError'
  }
}

/** Runs `work`, putting `context` in front of any failure. */
export async function doing<T>(context: string, work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (e) {
    throw new ContextError(context, e)
  }
}
