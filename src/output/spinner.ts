import type { Options, Ora } from "ora";

/**
 * ora, loaded in the background when a live view is made: it and its dependencies cost ~30 ms of
 * start-up that --json, --quiet and output that is not a terminal never need, and a live view first
 * draws after the job is submitted. Text and state set before it has loaded are applied when it is.
 */
export class LazySpinner {
  isSpinning = false;
  private current = "";
  private real: Ora | undefined;

  constructor(options: Options) {
    void import("ora").then(({ default: ora }) => {
      this.real = ora({ ...options, text: this.current });
      if (this.isSpinning) this.real.start();
    });
  }

  get text(): string {
    return this.current;
  }

  set text(value: string) {
    this.current = value;
    if (this.real) this.real.text = value;
  }

  start(): void {
    this.isSpinning = true;
    this.real?.start();
  }

  stop(): void {
    this.isSpinning = false;
    this.real?.stop();
  }
}
