/** What needs no login: GET /healthz and the stylesheet */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { VERSION } from '../../version.js';
import type { WebApp, WebServices } from '../context.js';
import { STYLES } from '../views/styles.js';

/** What these routes use of the relay */
export type PublicServices = Pick<WebServices, 'spool' | 'health'>;

/** Writable = we can create, sync and remove a file where receptions start */
async function spoolWritable(tmpDir: string): Promise<boolean> {
  const probe = path.join(tmpDir, `.healthz-${process.pid}`);
  try {
    const handle = await fs.open(probe, 'w', 0o600);
    await handle.sync();
    await handle.close();
    await fs.rm(probe, { force: true });
    return true;
  } catch {
    return false;
  }
}

export function publicRoutes(app: WebApp, state: PublicServices): void {
  app.get('/healthz', async (c) => {
    const [writable, ids] = await Promise.all([
      spoolWritable(state.spool.dir('tmp')),
      state.spool.ids().catch(() => undefined),
    ]);
    const ok = writable && ids !== undefined;
    const body = {
      status: ok ? 'ok' : 'unavailable',
      version: VERSION,
      spoolWritable: writable,
      queue: { depth: ids?.length ?? null },
      upstream: state.health.snapshot().reachability,
    };
    return c.json(body, ok ? 200 : 503);
  });
  app.get('/assets/app.css', (c) => {
    c.header('Cache-Control', 'public, max-age=3600');
    return c.body(STYLES, 200, { 'Content-Type': 'text/css; charset=utf-8' });
  });
}
