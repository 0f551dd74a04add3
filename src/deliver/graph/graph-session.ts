/**
 * Requests to Graph on behalf of one mailbox with the relay's app-only
 * token: a 401 earns one fresh token and one more try (the token may have
 * been revoked or gone stale), as the SMTP login does with XOAUTH2.
 */
import type { Config } from '../../config/schema.js';
import type { AccessTokenSource } from '../../oauth/client.js';
import { parseDuration } from '../../util/duration.js';
import { graphRequest, type GraphReply, type GraphRequest } from './graph-http.js';
import { graphBase } from './sender-mailbox.js';

export class GraphSession {
  readonly base: string;

  constructor(
    private readonly config: Config,
    private readonly tokens: AccessTokenSource,
    readonly mailbox: string,
  ) {
    this.base = `${graphBase(config)}/users/${encodeURIComponent(mailbox)}`;
  }

  private http() {
    const { tls, timeout } = this.config.delivery;
    return {
      caFile: tls.caFile || undefined,
      verify: tls.verify,
      timeoutMs: parseDuration(timeout) ?? 120_000,
    };
  }

  /** `path` below /users/{mailbox}, with the bearer token */
  async call(request: Omit<GraphRequest, 'url' | 'token'> & { path: string }): Promise<GraphReply> {
    const { path, ...rest } = request;
    const send = async (force: boolean) =>
      graphRequest(
        { ...rest, url: `${this.base}${path}`, token: await this.tokens.accessToken({ force }) },
        this.http(),
      );
    const reply = await send(false);
    return reply.status === 401 ? send(true) : reply;
  }

  /** An upload URL Graph handed out: it carries its own authorization */
  upload(request: Omit<GraphRequest, 'token'>): Promise<GraphReply> {
    return graphRequest(request, this.http());
  }
}
