/**
 * The housekeeping timetable (node-cron, in this process). Each job is a
 * row: a name, a schedule and what to run; a job that is still running
 * when its next turn comes is skipped, and a failure is logged, never fatal.
 * After stop() nothing is scheduled again: a config listener or a job that
 * ends late must not bring a stopped relay's jobs back.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';

export interface Job {
  name: string;
  /** node-cron expression; six fields = with seconds */
  schedule: string;
  run: () => Promise<unknown>;
}

export class Scheduler {
  private readonly tasks = new Map<string, ScheduledTask>();
  private readonly jobs = new Map<string, Job>();
  private readonly running = new Set<string>();
  private readonly soon = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(private readonly log: Logger) {}

  /** Adds or replaces a job (the digest's schedule comes from the settings); false when not scheduled (bad schedule, or stopped) */
  set(job: Job): boolean {
    if (this.stopped) return false;
    this.remove(job.name);
    if (!cron.validate(job.schedule)) {
      this.log.warn(
        { job: job.name, schedule: job.schedule },
        `Job "${job.name}" has an invalid schedule "${job.schedule}"; not scheduled`,
      );
      return false;
    }
    const task = cron.schedule(job.schedule, () => this.runJob(job), {
      name: job.name,
      noOverlap: true,
    });
    task.unref();
    this.tasks.set(job.name, task);
    this.jobs.set(job.name, job);
    return true;
  }

  remove(name: string): void {
    void this.tasks.get(name)?.destroy();
    this.tasks.delete(name);
    this.jobs.delete(name);
  }

  /** Runs a scheduled job once, `afterMs` from now, as its schedule would: errors logged, never two runs at once; false when stopped */
  runSoon(name: string, afterMs: number): boolean {
    if (this.stopped) return false;
    const timer = setTimeout(() => {
      this.soon.delete(timer);
      const job = this.jobs.get(name);
      if (job) void this.runJob(job);
    }, afterMs);
    timer.unref();
    this.soon.add(timer);
    return true;
  }

  names(): string[] {
    return [...this.tasks.keys()];
  }

  /** Ends every job's schedule; a run in progress finishes but nothing runs or is scheduled after it */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.soon) clearTimeout(timer);
    this.soon.clear();
    await Promise.all([...this.tasks.values()].map((task) => task.destroy()));
    this.tasks.clear();
    this.jobs.clear();
  }

  private async runJob(job: Job): Promise<void> {
    if (this.running.has(job.name)) return;
    this.running.add(job.name);
    try {
      await job.run();
    } catch (err) {
      this.log.error({ job: job.name, err: errorMessage(err) }, `Job "${job.name}" failed`);
    } finally {
      this.running.delete(job.name);
    }
  }
}
