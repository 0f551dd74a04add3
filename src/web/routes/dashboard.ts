/** GET / (the dashboard) and GET /api/status */
import { VERSION } from '../../version.js';
import { sessionOf, takeFlash, type WebApp } from '../context.js';
import { overview, type OverviewServices } from '../overview.js';
import { dashboardView } from '../views/dashboard.js';
import { page } from '../views/layout.js';

export function dashboardRoutes(app: WebApp, state: OverviewServices): void {
  app.get('/', async (c) => {
    const session = sessionOf(c);
    const facts = await overview(state);
    return c.html(
      page(
        {
          title: 'Dashboard',
          hostname: facts.hostname,
          version: VERSION,
          nav: { active: 'dashboard', csrf: session.csrf },
          flash: takeFlash(session),
        },
        dashboardView(facts),
      ),
    );
  });
  app.get('/api/status', async (c) => c.json(await overview(state)));
}
