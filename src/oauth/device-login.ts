/**
 * The device-code sign-in (RFC 8628), the friendliest on a box without a
 * browser: `start()` asks the provider for a code, the page shows the code
 * and the address, and a poller (at the provider's pace, bounded by the
 * code's lifetime) hands the tokens over once the admin has signed in.
 */
import { RelayError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { authorizeDevice, pollDevice, type GrantContext, type TokenResult } from './grants.js';
import { missingSetting } from './providers.js';

/** What the page shows: "go to verificationUri and enter userCode" */
export interface DeviceCode {
  userCode: string;
  verificationUri: string;
  /** Seconds the code stays valid */
  expiresIn: number;
  message?: string;
}

export type DeviceLoginState =
  | { state: 'idle' }
  | { state: 'waiting'; userCode: string; verificationUri: string; expiresAt: string }
  | { state: 'done'; at: string }
  | { state: 'failed'; reason: string };

export interface DeviceLoginOptions {
  context: () => GrantContext;
  onToken: (result: Extract<TokenResult, { kind: 'token' }>) => Promise<void>;
  log: Logger;
}

/** RFC 8628 section 3.5: slow_down adds 5 seconds */
const SLOW_DOWN_S = 5;

export class DeviceLogin {
  private current: DeviceLoginState = { state: 'idle' };
  private timer: NodeJS.Timeout | undefined;
  /** Bumped by every start and cancel, so a stale poll cannot act */
  private generation = 0;

  constructor(private readonly options: DeviceLoginOptions) {}

  state(): DeviceLoginState {
    return { ...this.current };
  }

  async start(): Promise<DeviceCode> {
    const context = this.options.context();
    const missing = missingSetting(context.settings);
    if (missing) throw new RelayError(`OAuth2 is not set up: ${missing}`, { kind: 'config' });
    if (context.settings.flow !== 'device')
      throw new RelayError('The device sign-in needs delivery.oauth2.flow "device"', {
        kind: 'config',
      });
    this.cancel();
    const generation = this.generation;
    const code = await authorizeDevice(context);
    if (generation !== this.generation)
      throw new RelayError('Another sign-in was started', { kind: 'temporary' });
    const expiresAt = Date.now() + code.expiresInS * 1000;
    this.current = {
      state: 'waiting',
      userCode: code.userCode,
      verificationUri: code.verificationUri,
      expiresAt: new Date(expiresAt).toISOString(),
    };
    this.options.log.info(
      { verificationUri: code.verificationUri, expiresIn: code.expiresInS },
      'OAuth2: device sign-in started; waiting for the admin',
    );
    this.schedule(generation, code.deviceCode, code.intervalS, expiresAt);
    return {
      userCode: code.userCode,
      verificationUri: code.verificationUri,
      expiresIn: code.expiresInS,
      ...(code.message ? { message: code.message } : {}),
    };
  }

  cancel(): void {
    this.generation++;
    clearTimeout(this.timer);
    if (this.current.state === 'waiting') this.current = { state: 'idle' };
  }

  private schedule(
    generation: number,
    deviceCode: string,
    intervalS: number,
    expiresAt: number,
  ): void {
    this.timer = setTimeout(
      () => void this.poll(generation, deviceCode, intervalS, expiresAt),
      Math.max(intervalS, 1) * 1000,
    );
    this.timer.unref();
  }

  private async poll(
    generation: number,
    deviceCode: string,
    intervalS: number,
    expiresAt: number,
  ): Promise<void> {
    if (generation !== this.generation) return;
    if (Date.now() >= expiresAt)
      return this.fail('The code expired before anyone signed in: start again');
    let result: TokenResult;
    try {
      result = await pollDevice(this.options.context(), deviceCode);
    } catch (err) {
      // The network may come back before the code expires
      this.options.log.warn(
        { err: errorMessage(err) },
        'OAuth2: device sign-in poll failed; trying again',
      );
      return this.schedule(generation, deviceCode, intervalS, expiresAt);
    }
    if (generation !== this.generation) return;
    if (result.kind === 'token') return this.finish(result);
    if (result.error === 'authorization_pending')
      return this.schedule(generation, deviceCode, intervalS, expiresAt);
    if (result.error === 'slow_down')
      return this.schedule(generation, deviceCode, intervalS + SLOW_DOWN_S, expiresAt);
    const reasons: Record<string, string> = {
      access_denied: 'The sign-in was declined',
      expired_token: 'The code expired before anyone signed in: start again',
    };
    this.fail(
      reasons[result.error] ??
        `The provider refused the sign-in (${result.error})${result.description ? `: ${result.description}` : ''}`,
    );
  }

  private async finish(result: Extract<TokenResult, { kind: 'token' }>): Promise<void> {
    try {
      await this.options.onToken(result);
      this.current = { state: 'done', at: new Date().toISOString() };
    } catch (err) {
      this.fail(errorMessage(err));
    }
  }

  private fail(reason: string): void {
    this.current = { state: 'failed', reason };
    this.options.log.warn({ reason }, 'OAuth2: device sign-in failed');
  }
}
