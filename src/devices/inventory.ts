/**
 * The device inventory: every client address that talked to the intake,
 * with its HELO name, today's messages and bytes, and the last result.
 * Stored as JSON in <dataDir>/devices.json, written atomically a moment
 * after changes (and on stop), so a burst of mail means one write.
 */
import path from 'node:path';
import { plainAddress } from '../util/ip.js';
import { outcomeText } from '../deliver/outcome.js';
import { UsageError, errorMessage } from '../errors.js';
import type { DeviceEvent, IntakeEvents } from '../intake/server.js';
import type { Logger } from '../log.js';
import { dayOf } from '../metrics/activity.js';
import type { AttemptReport } from '../queue/runner.js';
import { readJsonFile, writeFileAtomic } from '../util/fsx.js';

export interface DeviceResult {
  at: string;
  status: 'queued' | 'rejected' | 'delivered' | 'local' | 'deferred' | 'bounced';
  text: string;
}

export interface Device {
  address: string;
  name: string;
  helo: string;
  firstSeen: string;
  lastSeen: string;
  /** Local calendar day the `today` counts belong to */
  day: string;
  today: { messages: number; bytes: number; rejects: number };
  total: { messages: number; bytes: number; rejects: number };
  lastResult: DeviceResult | null;
}

const SAVE_DELAY_MS = 2_000;
/** Keeps the file small on a network that scans us from many addresses */
const MAX_DEVICES = 2_000;
/** Queue id -> client address, to credit delivery results to the device that sent */
const MAX_TRACKED = 10_000;
const MAX_NAME = 80;

export class DeviceInventory {
  private readonly devices = new Map<string, Device>();
  private readonly senders = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {}

  static async open(dataDir: string, log: Logger): Promise<DeviceInventory> {
    const inventory = new DeviceInventory(path.join(dataDir, 'devices.json'), log);
    const stored = await readJsonFile<Device[]>(inventory.file).catch((err) => {
      log.warn({ err: errorMessage(err) }, 'Device inventory unreadable; starting empty');
      return undefined;
    });
    for (const device of Array.isArray(stored) ? stored : [])
      if (typeof device?.address === 'string') inventory.devices.set(device.address, device);
    return inventory;
  }

  queued(event: IntakeEvents['queued'][0]): void {
    const device = this.touch(event);
    device.today.messages++;
    device.today.bytes += event.size;
    device.total.messages++;
    device.total.bytes += event.size;
    device.lastResult = {
      at: event.at.toISOString(),
      status: 'queued',
      text: `Accepted, queued as ${event.id}`,
    };
    this.senders.set(event.id, event.client);
    if (this.senders.size > MAX_TRACKED)
      this.senders.delete(this.senders.keys().next().value as string);
    this.changed();
  }

  rejected(event: IntakeEvents['rejected'][0]): void {
    const device = this.touch(event);
    device.today.rejects++;
    device.total.rejects++;
    device.lastResult = {
      at: event.at.toISOString(),
      status: 'rejected',
      text: `${event.code} ${event.reason}`,
    };
    this.changed();
  }

  attempt(report: AttemptReport, at = new Date()): void {
    const address = this.senders.get(report.id);
    const device = address ? this.devices.get(address) : undefined;
    if (report.finished) this.senders.delete(report.id);
    const last = report.outcomes.at(-1);
    if (!device || !last) return;
    const { outcome } = last;
    const text = outcomeText(outcome);
    device.lastResult = {
      at: at.toISOString(),
      status: outcome.status,
      text: `${report.id} to ${last.address}: ${text}`,
    };
    this.changed();
  }

  async rename(address: string, name: string): Promise<Device> {
    const device = this.devices.get(address);
    if (!device) throw new UsageError(`No device with address "${address}"`);
    const clean = name.trim();
    if (clean.length > MAX_NAME)
      throw new UsageError(
        `Device name is longer than ${MAX_NAME} characters: "${clean.slice(0, 20)}..."`,
      );
    device.name = clean;
    this.changed();
    await this.flush();
    return device;
  }

  /** The admin-given name of the device at `address` (a dual-stack "::ffff:10.0.0.5" is "10.0.0.5"), for the rewritten From */
  name(address: string): string | undefined {
    const device = this.devices.get(address) ?? this.devices.get(plainAddress(address));
    return device?.name || undefined;
  }

  /** Devices, most recently seen first, with today's counts reset on a new day */
  list(now = new Date()): Device[] {
    const day = dayOf(now);
    return [...this.devices.values()]
      .map((device) =>
        device.day === day
          ? device
          : { ...device, day, today: { messages: 0, bytes: 0, rejects: 0 } },
      )
      .sort((a, b) => b.lastSeen.localeCompare(a.lastSeen));
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const data = JSON.stringify([...this.devices.values()], null, 1);
    this.saving = this.saving
      .then(() => writeFileAtomic(this.file, data, 0o600))
      .catch((err) =>
        this.log.warn({ err: errorMessage(err) }, 'Could not save the device inventory'),
      );
    await this.saving;
  }

  private touch(event: DeviceEvent): Device {
    const at = event.at.toISOString();
    const day = dayOf(event.at);
    let device = this.devices.get(event.client);
    if (!device) {
      device = {
        address: event.client,
        name: '',
        helo: '',
        firstSeen: at,
        lastSeen: at,
        day,
        today: { messages: 0, bytes: 0, rejects: 0 },
        total: { messages: 0, bytes: 0, rejects: 0 },
        lastResult: null,
      };
      this.devices.set(event.client, device);
      this.evictOldest();
    }
    if (device.day !== day)
      Object.assign(device, { day, today: { messages: 0, bytes: 0, rejects: 0 } });
    device.lastSeen = at;
    if (event.helo) device.helo = event.helo;
    return device;
  }

  private evictOldest(): void {
    if (this.devices.size <= MAX_DEVICES) return;
    const oldest = [...this.devices.values()]
      .filter((d) => !d.name)
      .sort((a, b) => a.lastSeen.localeCompare(b.lastSeen))[0];
    if (oldest) this.devices.delete(oldest.address);
  }

  private changed(): void {
    this.timer ??= setTimeout(() => void this.flush(), SAVE_DELAY_MS).unref();
  }
}
