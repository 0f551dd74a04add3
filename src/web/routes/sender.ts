/** The sender page and its API: OAuth2 sign-in, DKIM record, pre-flight; device transcripts */
import { Dns } from '../../deliver/dns.js';
import { preflight } from '../../deliver/preflight.js';
import { graphCheck } from '../../deliver/graph/graph-check.js';
import { activeSignIn } from '../../oauth/providers.js';
import { RelayError, errorMessage } from '../../errors.js';
import { parseAddress } from '../../route/address.js';
import type { WebApp, WebServices } from '../context.js';
import { senderView, transcriptsView, type SenderPage } from '../views/sender.js';
import { field, redirectWith, render } from './render.js';

/** What these routes use of the relay */
export type SenderServices = Pick<WebServices, 'store' | 'dkim' | 'oauth' | 'intake'>;

async function dkimRecord(state: SenderServices): Promise<SenderPage['dkim']> {
  const { dkim } = state.store.config.delivery;
  if (!dkim.enabled || !dkim.domain) return undefined;
  return state.dkim
    .record(dkim.domain, dkim.selector)
    .catch((err: unknown) => ({ error: errorMessage(err) }));
}

/** The domain the rewritten From uses: what an admin most likely wants to check */
const alignedDomain = (state: SenderServices): string =>
  parseAddress(state.store.config.delivery.rewrite.headerFrom)?.domain ?? '';

/** `domain`: the one to check now ("" = no check; the box shows the aligned sender's domain) */
async function senderPage(state: SenderServices, domain: string): Promise<SenderPage> {
  const config = state.store.config;
  const dkim = await dkimRecord(state);
  const expected =
    dkim && !('error' in dkim)
      ? { selector: config.delivery.dkim.selector, publicKey: dkim.publicKey }
      : undefined;
  return {
    oauthEnabled: config.delivery.mode === 'graph' || config.delivery.smarthost.auth === 'oauth2',
    flow: activeSignIn(config).settings.flow,
    oauth: state.oauth.status(),
    login: state.oauth.deviceLoginState(),
    dkim,
    preflight: domain
      ? await preflight(
          new Dns(() => state.store.config),
          config,
          domain,
          expected,
          config.delivery.mode === 'graph'
            ? (name) => graphCheck(config, state.oauth, name)
            : undefined,
        )
      : undefined,
    domain: domain || alignedDomain(state),
  };
}

export function senderRoutes(app: WebApp, state: SenderServices): void {
  app.get('/sender', async (c) => {
    const page = await senderPage(state, '');
    return render(c, state, 'sender', 'Sender', (csrf) => senderView(page, csrf));
  });
  app.post('/sender/preflight', async (c) => {
    const page = await senderPage(state, (await field(c, 'domain')).trim());
    return render(c, state, 'sender', 'Sender', (csrf) => senderView(page, csrf));
  });
  app.post('/sender/oauth/start', async (c) => {
    try {
      await state.oauth.startDeviceLogin();
      return redirectWith(c, '/sender', {
        kind: 'ok',
        text: 'Sign-in started: enter the code shown below',
      });
    } catch (err) {
      if (err instanceof RelayError)
        return redirectWith(c, '/sender', { kind: 'error', text: err.message });
      throw err;
    }
  });
  app.post('/sender/oauth/signout', async (c) => {
    await state.oauth.signOut();
    return redirectWith(c, '/sender', {
      kind: 'ok',
      text: 'Signed out: mail to the upstream waits until someone signs in again',
    });
  });
  app.get('/devices/:address/transcripts', (c) => {
    const address = c.req.param('address');
    return render(c, state, 'devices', 'Transcripts', () =>
      transcriptsView(address, state.intake.transcripts.forClient(address)),
    );
  });

  app.get('/api/sender', async (c) => c.json(await senderPage(state, c.req.query('domain') ?? '')));
  app.post('/api/sender/oauth/start', async (c) => c.json(await state.oauth.startDeviceLogin()));
  app.get('/api/devices/:address/transcripts', (c) =>
    c.json(state.intake.transcripts.forClient(c.req.param('address'))),
  );
}
